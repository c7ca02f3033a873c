"""The per-image size rule, and that the image check judges sizes by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chroma_studio.dataset import (
    BELOW_RESOLUTION,
    TOO_SMALL,
    TOO_SMALL_UPSCALE,
    ImageRecord,
    bucket_for,
    is_huge,
    size_fit,
    size_problem,
)
from chroma_studio.dataset.rules import size_findings

SIZES = [
    (1024, 1024),
    (2048, 1536),
    (1000, 1000),
    (256, 256),
    (255, 255),
    (100, 100),
    (1400, 800),
    (4000, 300),
    (300, 4000),
    (64, 1024),
]


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1024, 1024), 1024, None),
        ((2048, 2048), 1024, None),
        ((1023, 1023), 1024, BELOW_RESOLUTION),
        ((256, 256), 1024, BELOW_RESOLUTION),  # enlarged exactly 4x: still usable
        ((255, 255), 1024, TOO_SMALL),
        ((400, 400), 512, BELOW_RESOLUTION),
        ((100, 100), 512, TOO_SMALL),
        ((1400, 800), 512, None),
    ],
)
def test_size_problem(size, resolution, expected):
    assert size_problem(*size, resolution) == expected


def test_size_fit_gives_the_bucket_and_the_enlargement():
    fit = size_fit(100, 100, 512)

    assert fit.bucket == bucket_for(100, 100, 512) == (512, 512)
    assert fit.upscale == pytest.approx(5.12)
    assert fit.upscale > TOO_SMALL_UPSCALE and fit.problem == TOO_SMALL


def test_an_image_with_no_area_is_refused():
    with pytest.raises(ValueError, match="no area"):
        size_problem(0, 100, 512)


def test_huge_is_about_pixels():
    assert is_huge(9000, 9000) and not is_huge(6000, 4000)


@pytest.mark.parametrize("resolution", [512, 1024])
def test_the_check_reports_exactly_the_size_problems_of_the_rule(resolution):
    for width, height in SIZES:
        path = Path(f"/data/{width}x{height}.png")
        record = ImageRecord(path, width, height, path.with_suffix(".txt"), path.parent)
        codes = {f.code for f in size_findings(record, resolution)} - {"huge"}
        expected = size_problem(width, height, resolution)
        assert codes == ({expected} if expected else set()), (width, height)
