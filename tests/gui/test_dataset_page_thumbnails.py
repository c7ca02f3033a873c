"""The thumbnail loader behind the Dataset page's grid: on demand, once per path, upright, cached on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.gui.dataset.thumbnail_cache import cache_file, load_thumbnail
from chroma_studio.gui.dataset.thumbnail_loader import ThumbnailLoader

WAIT_MS = 10_000
EXIF_ORIENTATION = 0x0112


def striped(path: Path, size: tuple[int, int], orientation: int | None = None) -> Path:
    image = Image.new("RGB", size, (250, 250, 250))
    for x in range(0, size[0], 20):
        image.paste((20, 20, 200), (x, 0, x + 10, size[1]))
    exif = Image.Exif()
    if orientation:
        exif[EXIF_ORIENTATION] = orientation
    image.save(path, exif=exif)
    return path


@pytest.fixture
def loader(qtbot, tmp_path):
    loader = ThumbnailLoader(px=128, cache_folder=tmp_path / "thumbs", threads=2)
    yield loader
    loader.shutdown()


def test_a_path_is_decoded_once_however_often_it_is_painted(loader, qtbot, tmp_path):
    photo = str(striped(tmp_path / "wide.jpg", (400, 200)))
    with qtbot.waitSignal(loader.thumbnail_changed, timeout=WAIT_MS) as ready:
        assert loader.pixmap(photo) is None  # a placeholder first
        assert loader.pixmap(photo) is None
        assert loader.pending_count() == 1
    assert ready.args == [photo]
    pixmap = loader.pixmap(photo)
    assert (pixmap.width(), pixmap.height()) == (128, 64)
    assert loader.pending_count() == 0


def test_exif_orientation_is_applied(loader, qtbot, tmp_path):
    photo = str(striped(tmp_path / "turned.jpg", (400, 200), orientation=6))  # stored landscape, shown portrait
    with qtbot.waitSignal(loader.thumbnail_changed, timeout=WAIT_MS):
        loader.request(photo)
    pixmap = loader.pixmap(photo)
    assert (pixmap.width(), pixmap.height()) == (64, 128)


def test_thumbnails_are_reused_from_disk_until_the_image_changes(tmp_path):
    folder = tmp_path / "thumbs"
    photo = striped(tmp_path / "photo.png", (300, 300))
    first = load_thumbnail(photo, 64, folder)
    stored = cache_file(folder, photo, 64)
    assert stored.is_file() and (first.width(), first.height()) == (64, 64)
    Image.new("RGB", (10, 10), (0, 255, 0)).save(stored, "PNG")  # a stand-in proves the cache is read
    assert load_thumbnail(photo, 64, folder).width() == 10
    striped(photo, (300, 150))
    os.utime(photo, ns=(1, 1))  # a different modification time: a different key
    assert cache_file(folder, photo, 64) != stored
    assert load_thumbnail(photo, 64, folder).size().toTuple() == (64, 32)


def test_a_damaged_file_is_reported_once(loader, qtbot, tmp_path):
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with qtbot.waitSignal(loader.thumbnail_changed, timeout=WAIT_MS):
        loader.request(str(damaged))
    assert loader.failure(str(damaged))
    assert loader.pixmap(str(damaged)) is None
    assert loader.pending_count() == 0  # not asked for again


def test_clear_cancels_requests_and_ignores_late_results(loader, qtbot, tmp_path):
    photos = [str(striped(tmp_path / f"p{i}.png", (200, 200))) for i in range(30)]
    for photo in photos:
        loader.request(photo)
    loader.clear()
    assert loader.pending_count() == 0
    with qtbot.assertNotEmitted(loader.thumbnail_changed, wait=200):
        assert loader.wait_for_done(WAIT_MS)
    assert not any(loader.has_thumbnail(photo) for photo in photos)


def test_forget_queued_keeps_what_has_started(loader, qtbot, tmp_path):
    photos = [str(striped(tmp_path / f"q{i}.png", (200, 200))) for i in range(30)]
    for photo in photos:
        loader.request(photo)
    loader.forget_queued()
    assert loader.pending_count() <= 2  # at most the two that were running
    assert loader.wait_for_done(WAIT_MS)
    qtbot.waitUntil(lambda: loader.pending_count() == 0, timeout=WAIT_MS)
    assert sum(loader.has_thumbnail(photo) for photo in photos) <= 2
