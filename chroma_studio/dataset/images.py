"""Decoding images for training and for the checks, with EXIF orientation applied.

``load_training_image`` gives the trainer exactly the pixels of one bucket: RGB (transparency
flattened onto white), enlarged or reduced with Lanczos until it covers the bucket, then cut
to it from the centre. JPEGs are decoded at a reduced scale when that still covers the bucket,
which saves most of the decoding time for camera-sized photos.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageOps

from chroma_studio.dataset.probe import SWAPPING_ORIENTATIONS, read_orientation

BACKGROUND = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_HIGH_BIT_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def load_training_image(path: Path, size: tuple[int, int]) -> Image.Image:
    """Decode ``path`` upright, as RGB, resized to cover ``size`` = (width, height) and centre-cropped to it."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"target size {width}x{height} has no area.")
    with Image.open(path) as im:
        if im.format == "JPEG":
            _draft_to_cover(im, size)
        upright = ImageOps.exif_transpose(im)
    return cover_crop(to_rgb(upright), size)


def load_check_thumbnail(path: Path, min_side: int = 64) -> Image.Image:
    """Decode every byte of ``path`` (so damage raises) into an upright grayscale image.

    JPEGs are decoded at up to 1/8 scale (never below ``min_side``); the result is small and
    serves the perceptual hash. Raises whatever Pillow raises for a damaged file.
    """
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("L", (min_side, min_side))
        im.load()
        upright = ImageOps.exif_transpose(im)
    return upright if upright.mode == "L" else to_rgb(upright).convert("L")


def verify_image(path: Path) -> None:
    """Check the file's structure without decoding its pixels (for PNG: every chunk's checksum, to the end)."""
    with Image.open(path) as im:
        im.verify()


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB pixels; transparency is flattened onto white and 16-bit images are scaled, not clipped."""
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode in _HIGH_BIT_DEPTH_MODES:
        im = im.convert("I")
        high = im.getextrema()[1]
        if isinstance(high, (int, float)) and high > 255:
            scale = 255 / (65535 if high <= 65535 else high)
            im = im.point(lambda value: value * scale)
        return im.convert("L").convert("RGB")
    return im.convert("RGB")


def cover_crop(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale ``im`` (Lanczos) to the smallest size covering ``size`` and keep the centre, in one resampling."""
    width, height = size
    scale = max(width / im.width, height / im.height)
    crop_w, crop_h = width / scale, height / scale
    left, top = (im.width - crop_w) / 2, (im.height - crop_h) / 2
    return im.resize(size, Image.Resampling.LANCZOS, box=(left, top, left + crop_w, top + crop_h))


def _draft_to_cover(im: Image.Image, size: tuple[int, int]) -> None:
    """Ask the JPEG decoder for the smallest DCT scale that still covers ``size`` once upright."""
    stored_w, stored_h = im.size
    if read_orientation(im) in SWAPPING_ORIENTATIONS:
        size = (size[1], size[0])
    scale = max(size[0] / stored_w, size[1] / stored_h)
    if scale < 1:
        im.draft(im.mode, (math.ceil(stored_w * scale), math.ceil(stored_h * scale)))
