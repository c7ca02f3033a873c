"""Making thumbnails, and keeping them on disk so a folder opens fast the second time.

Runs on worker threads: only ``QImage`` and ``QImageReader`` here, never ``QPixmap``. A thumbnail
is keyed by (path, modification time, size in bytes, thumbnail px): an edited image gets a new
one. Thumbnails are stored as WebP (PNG where the WebP plugin is missing), written atomically.
Images Qt cannot read (formats without a Qt plugin, sizes above its allocation limit) are
decoded with Pillow instead.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageReader, QImageWriter

from chroma_studio.base.paths import cache_dir

log = logging.getLogger(__name__)

THUMBNAIL_PX = 256  # the longer side of a stored thumbnail
CACHE_QUALITY = 82


class ThumbnailError(Exception):
    """The image cannot be made into a thumbnail; the message says why."""


def thumbnail_folder() -> Path:
    return cache_dir() / "thumbnails"


@functools.lru_cache(maxsize=1)
def cache_format() -> str:
    supported = {bytes(name).decode() for name in QImageWriter.supportedImageFormats()}
    return "webp" if "webp" in supported else "png"


def cache_key(path: Path, mtime_ns: int, size: int, px: int) -> str:
    # surrogateescape: a file name that is not UTF-8 hashes as its bytes (the same key as before for any other).
    key = f"{path}\0{mtime_ns}\0{size}\0{px}".encode("utf-8", "surrogateescape")
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()


def cache_file(folder: Path, path: Path, px: int) -> Path:
    """Where the thumbnail of ``path`` (as the file is now) is kept. Raises OSError if it cannot be read."""
    stat = path.stat()
    key = cache_key(path.absolute(), stat.st_mtime_ns, stat.st_size, px)
    return folder / key[:2] / f"{key}.{cache_format()}"


def load_thumbnail(path: str | os.PathLike[str], px: int = THUMBNAIL_PX, folder: Path | None = None) -> QImage:
    """The thumbnail of ``path``, at most ``px`` on its longer side, upright; from the disk cache in
    ``folder`` when it holds one. Raises ThumbnailError."""
    source = Path(path)
    try:
        cached = cache_file(folder, source, px) if folder is not None else None
    except OSError as exc:
        raise ThumbnailError(f"cannot be read ({exc.strerror or exc})") from None
    if cached is not None and cached.is_file():
        image = QImage(str(cached))
        if not image.isNull():
            return image
        log.debug("unreadable cached thumbnail %s", cached)
    image = decode_scaled(source, px)
    if cached is not None:
        store(cached, image)
    return image


def decode_scaled(path: Path, px: int) -> QImage:
    """Decode ``path`` upright at no more than ``px`` on its longer side (scaled while decoding where
    the format allows).

    The file is read by Python and handed to Qt as bytes: Qt cannot open a file whose name is
    not UTF-8 (the conversion to a QString drops the bytes it cannot decode)."""
    try:
        with open(path, "rb") as handle:
            data = QByteArray(handle.read())
    except OSError as exc:
        raise ThumbnailError(f"cannot be read ({exc.strerror or exc})") from None
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    reader.setAutoTransform(True)
    stored = reader.size()
    if stored.isValid() and max(stored.width(), stored.height()) > px:
        reader.setScaledSize(stored.scaled(QSize(px, px), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        log.debug("Qt cannot read %s (%s); trying Pillow", path, reader.errorString())
        image = _decode_with_pillow(path, px)
    if max(image.width(), image.height()) > px:
        image = image.scaled(px, px, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


def _decode_with_pillow(path: Path, px: int) -> QImage:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (px, px))
            im.thumbnail((px, px))
            upright = ImageOps.exif_transpose(im).convert("RGBA")
    except Exception as exc:  # a damaged file can fail inside any Pillow plugin, in any way
        raise ThumbnailError(f"cannot be decoded ({exc})") from None
    data = upright.tobytes("raw", "RGBA")
    width, height = upright.size
    return QImage(data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


def store(target: Path, image: QImage) -> None:
    """Write ``image`` to ``target`` atomically; a failure only costs the cache entry."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".thumb.", suffix=f".{cache_format()}", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        log.debug("cannot cache a thumbnail in %s: %s", target.parent, exc)
        return
    try:
        if not image.save(tmp, cache_format(), CACHE_QUALITY):
            raise OSError("the image writer failed")
        os.replace(tmp, target)
    except OSError as exc:
        log.debug("cannot cache thumbnail %s: %s", target, exc)
        Path(tmp).unlink(missing_ok=True)
