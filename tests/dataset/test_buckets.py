from __future__ import annotations

import math

import pytest

from chroma_studio.dataset.buckets import (
    MAX_ASPECT,
    assign_buckets,
    bucket_for,
    bucket_histogram,
    bucket_sizes,
    upscale_factor,
)
from chroma_studio.dataset.scan import ImageRecord

RESOLUTIONS = [256, 512, 768, 1024, 1536, 2048]


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_buckets_are_multiples_of_64_with_nearly_constant_area(resolution):
    sizes = bucket_sizes(resolution)

    assert (resolution, resolution) in sizes
    assert len(sizes) == len(set(sizes)) >= 3
    for width, height in sizes:
        assert width % 64 == 0 and height % 64 == 0
        assert abs(width * height / resolution**2 - 1) <= 0.07
        assert 1 / MAX_ASPECT <= width / height <= MAX_ASPECT
    aspects = [w / h for w, h in sizes]
    assert aspects == sorted(aspects, reverse=True)  # widest first
    assert set(sizes) == {(h, w) for w, h in sizes}  # every landscape bucket has its portrait twin


def test_large_resolutions_offer_many_shapes_close_to_the_target_area():
    sizes = bucket_sizes(1024)

    assert len(sizes) >= 20
    assert (1024, 1024) in sizes and (1216, 832) in sizes and (832, 1216) in sizes
    assert all(abs(w * h / 1024**2 - 1) <= 0.06 for w, h in sizes)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1000, 1000), (1024, 1024)), ((1920, 1080), (1344, 768)), ((1080, 1920), (768, 1344)),
     ((3000, 2000), (1280, 832))],
)  # fmt: skip
def test_bucket_for_picks_the_nearest_aspect_ratio(size, expected):
    assert bucket_for(*size, 1024) == expected


def test_bucket_for_is_the_closest_in_log_aspect():
    for width, height in [(640, 480), (333, 1000), (1200, 700), (5000, 3100)]:
        chosen = bucket_for(width, height, 768)
        target = math.log(width / height)
        best = min(abs(math.log(w / h) - target) for w, h in bucket_sizes(768))
        assert abs(math.log(chosen[0] / chosen[1]) - target) == best


def test_extreme_aspect_ratios_clamp_to_the_most_extreme_bucket():
    sizes = bucket_sizes(1024)
    widest, tallest = sizes[0], sizes[-1]

    assert bucket_for(10000, 100, 1024) == widest
    assert bucket_for(100, 10000, 1024) == tallest
    assert widest[0] / widest[1] >= 3.5


def test_bucket_for_rejects_empty_images():
    with pytest.raises(ValueError):
        bucket_for(0, 100, 1024)


def test_resolution_too_small_for_buckets_is_refused():
    with pytest.raises(ValueError, match="resolution"):
        bucket_sizes(64)


def test_assign_buckets_maps_each_record_index(tmp_path):
    def record(w: int, h: int) -> ImageRecord:
        return ImageRecord(tmp_path / f"{w}x{h}.png", w, h, tmp_path / "c.txt", tmp_path)

    records = [record(512, 512), record(900, 600), record(600, 900), record(300, 300), record(1024, 680)]

    assignment = assign_buckets(records, 512)

    assert assignment == {(640, 384): [1, 4], (512, 512): [0, 3], (384, 640): [2]}
    assert sorted(i for indices in assignment.values() for i in indices) == list(range(len(records)))
    assert bucket_histogram(records, 512) == {(640, 384): 2, (512, 512): 2, (384, 640): 1}


def test_upscale_factor():
    assert upscale_factor(512, 512, (1024, 1024)) == 2
    assert upscale_factor(2048, 1000, (1024, 1024)) == pytest.approx(1.024)
    assert upscale_factor(4000, 3000, (1024, 768)) < 1
