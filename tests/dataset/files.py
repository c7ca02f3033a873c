"""Helpers that write real image files for the dataset tests."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ORIENTATION = 0x0112

_VOCABULARY_TEXT = (
    "woman man standing sitting smiling laughing park street beach kitchen red blue green jacket dress hat "
    "morning evening sunlight shadow window garden city forest close-up portrait full-body profile looking "
    "camera away holding cup book umbrella bicycle dog cat rain snow autumn leaves bench stairs wall brick "
    "wooden table lamp night neon soft light warm cold background blurred sharp focus wide angle"
)
VOCABULARY = _VOCABULARY_TEXT.split()


def varied_caption(rng: random.Random, trigger: str = "ohwx") -> str:
    return f"{trigger}, " + " ".join(rng.sample(VOCABULARY, 14))


def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A picture with structure at every scale (smooth blobs plus fine noise), unique per seed."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(coarse, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height, with a token of image data: nothing large is allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def tree_digest(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (links not followed) -> (its bytes, its mtime in ns)."""
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return digest
