"""A long scan reports how far it is and stops part-way when asked, keeping what it found."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from chroma_studio.dataset import scan as scan_module
from chroma_studio.dataset.scan import PROGRESS_INTERVAL_S, scan_folders

from .files import photo


def small_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image = photo((16, 16))
    paths = [folder / f"img_{i:03d}.png" for i in range(count)]
    for path in paths:
        image.save(path)
    return paths


@pytest.fixture
def slow_probe(monkeypatch):
    """Make reading each header take 2 ms, so a scan of a few hundred files lasts long enough to watch."""
    real = scan_module.probe_image

    def probe(path):
        time.sleep(0.002)
        return real(path)

    monkeypatch.setattr(scan_module, "probe_image", probe)


def test_progress_counts_files_at_most_ten_times_a_second(tmp_path, slow_probe):
    small_images(tmp_path / "a", 120)
    small_images(tmp_path / "b", 30)
    calls: list[tuple[float, int, Path]] = []

    started = time.monotonic()
    result = scan_folders([tmp_path], progress=lambda done, folder: calls.append((time.monotonic(), done, folder)))
    elapsed = time.monotonic() - started

    assert len(result.images) == 150 and not result.cancelled
    counts = [done for _, done, _ in calls]
    assert counts == sorted(set(counts)), "the count only grows"
    assert counts[0] == 1, "the first file is reported at once"
    assert calls[-1][1:] == (150, tmp_path / "b"), "the end is reported, with the folder read last"
    assert {folder for _, _, folder in calls} <= {tmp_path / "a", tmp_path / "b"}
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(calls[:-1])]
    assert all(gap >= PROGRESS_INTERVAL_S * 0.9 for gap in gaps), gaps  # the final report may come sooner
    assert 2 <= len(calls) <= elapsed / PROGRESS_INTERVAL_S + 2


def test_should_stop_ends_the_scan_between_files_with_what_was_found(tmp_path, monkeypatch):
    paths = small_images(tmp_path / "photos", 50)
    small_images(tmp_path / "second", 5)
    probed: list[Path] = []
    real = scan_module.probe_image
    monkeypatch.setattr(scan_module, "probe_image", lambda path: probed.append(path) or real(path))
    polls = 0

    def should_stop() -> bool:
        nonlocal polls
        polls += 1
        return len(probed) >= 20

    result = scan_folders([tmp_path / "photos", tmp_path / "second"], should_stop=should_stop)

    assert result.cancelled
    assert [record.path for record in result.images] == paths[:20]
    assert len(probed) == 20, "no file is read after the stop"
    assert polls >= 20, "asked before each file"
    assert not any(p.is_relative_to(tmp_path / "second") for p in probed), "later folders are not started"


def test_a_stop_before_the_first_file_returns_an_empty_cancelled_result(tmp_path):
    small_images(tmp_path, 3)

    result = scan_folders([tmp_path], should_stop=lambda: True)

    assert result.cancelled and result.images == [] and result.problems == []


def test_a_stopped_scan_keeps_the_problems_met_so_far(tmp_path):
    (tmp_path / "a_broken.png").write_bytes(b"not a png")
    small_images(tmp_path, 5)
    answers = iter([False, False, False])  # the folder, a_broken.png, img_000.png; then stop

    result = scan_folders([tmp_path], should_stop=lambda: next(answers, True))

    assert result.cancelled
    assert [p.path.name for p in result.problems] == ["a_broken.png"]
    assert [r.path.name for r in result.images] == ["img_000.png"]


def test_without_a_stop_the_result_is_not_cancelled(tmp_path):
    small_images(tmp_path, 3)

    result = scan_folders([tmp_path], True, progress=None, should_stop=lambda: False)

    assert not result.cancelled and len(result.images) == 3
