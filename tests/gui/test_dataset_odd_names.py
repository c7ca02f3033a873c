"""A file name that is not UTF-8 (any bytes are allowed on Linux) still gets its thumbnail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from chroma_studio.gui.dataset.thumbnail_loader import ThumbnailLoader

WAIT_MS = 10_000


def non_utf8_image(folder: Path) -> Path:
    """``caf\\xe9.png`` (Latin-1), which Python names with a lone surrogate; skipped where the filesystem refuses it."""
    name = os.fsdecode(b"caf\xe9.png")
    path = folder / name
    try:
        Image.new("RGB", (300, 150), (200, 40, 40)).save(path, format="PNG")
    except (OSError, UnicodeEncodeError, ValueError):
        pytest.skip("this filesystem does not take file names that are not UTF-8")
    if name not in os.listdir(folder):
        pytest.skip("this filesystem changed the file name")
    return path


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are Unicode")
def test_a_file_name_that_is_not_utf8_gets_a_thumbnail(qtbot, tmp_path):
    photo = str(non_utf8_image(tmp_path))
    assert "\udce9" in photo
    loader = ThumbnailLoader(px=64, cache_folder=tmp_path / "thumbs", threads=1)
    try:
        with qtbot.waitSignal(loader.thumbnail_changed, timeout=WAIT_MS) as ready:
            assert loader.pixmap(photo) is None
        assert ready.args == [photo]
        assert loader.failure(photo) == ""
        pixmap = loader.pixmap(photo)
        assert pixmap is not None
        assert (pixmap.width(), pixmap.height()) == (64, 32)
        assert loader.pending_count() == 0
    finally:
        loader.shutdown()
