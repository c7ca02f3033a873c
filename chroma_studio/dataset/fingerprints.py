"""Fingerprints for finding duplicate images: a content hash and a perceptual hash.

The perceptual hash is a 128-bit difference hash (dHash): the image is shrunk to 9x9 grayscale
pixels and each bit says whether a pixel is brighter than its right neighbour (64 bits) or than
the one below (64 bits). Re-encoding, resizing, mild colour or brightness changes leave it
almost unchanged; a different picture flips about half the bits. Two images are near
duplicates when at most ``NEAR_DUPLICATE_BITS`` of the 128 differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from chroma_studio.dataset.grouping import group_pairs

HASH_SIDE = 9
NEAR_DUPLICATE_BITS = 12
_CHUNK = 1 << 20
_BLOCK = 64  # rows compared at once: 64 x 10,000 pairs is a few MB
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dhash(gray: Image.Image) -> bytes:
    """The 16-byte difference hash of a grayscale (mode "L") image of any size."""
    pixels = gray.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX).tobytes()
    side = HASH_SIDE
    bits = [pixels[r * side + c] > pixels[r * side + c + 1] for r in range(side - 1) for c in range(side - 1)]
    bits += [pixels[r * side + c] > pixels[(r + 1) * side + c] for r in range(side - 1) for c in range(side - 1)]
    return int("".join("1" if b else "0" for b in bits), 2).to_bytes(16, "big")


def hamming(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def near_duplicate_groups(hashes: Sequence[bytes], max_bits: int = NEAR_DUPLICATE_BITS) -> list[list[int]]:
    """Groups (of two or more indices into ``hashes``) linked by hashes within ``max_bits`` of each other.

    Grouping is transitive (A~B and B~C put A, B, C together). Compares all pairs with numpy, a block of
    rows at a time: well under a second for 10,000 images.
    """
    same: dict[bytes, list[int]] = {}
    for index, value in enumerate(hashes):
        same.setdefault(value, []).append(index)
    unique = list(same)  # equal hashes are grouped without comparing them pair by pair
    pairs = [(members[0], other) for members in same.values() for other in members[1:]]
    pairs += [(same[unique[a]][0], same[unique[b]][0]) for a, b in _close_pairs(unique, max_bits)]
    return group_pairs(len(hashes), pairs)


def _close_pairs(hashes: list[bytes], max_bits: int) -> list[tuple[int, int]]:
    count = len(hashes)
    if count < 2:
        return []
    words = np.frombuffer(b"".join(hashes), dtype=">u8").reshape(count, -1).astype(np.uint64)
    columns = [np.ascontiguousarray(words[:, k]) for k in range(words.shape[1])]
    pairs = []
    for start in range(0, count - 1, _BLOCK):
        distances = sum(_popcount(col[start : start + _BLOCK, None] ^ col[None, start:]) for col in columns)
        rows, cols = np.nonzero(distances <= max_bits)
        pairs.extend((start + int(i), start + int(j)) for i, j in zip(rows, cols, strict=True) if i < j)
    return pairs


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element (numpy >= 2 has this built in)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8)
