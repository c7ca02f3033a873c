"""Aspect-ratio buckets: the training shapes for a resolution, and which images go in each.

Every bucket has both sides a multiple of 64 (the VAE downsamples by 8 and the transformer packs
2x2 latent patches, and 64 keeps every shape a clean multiple of both) and about
``resolution**2`` pixels: within ``MAX_AREA_DEVIATION``, so each step costs about the same.
Aspect ratios run from 1:``MAX_ASPECT`` to ``MAX_ASPECT``:1; more extreme images go to the most
extreme bucket and lose more to the crop. Images in one bucket share a shape, so the trainer's
batches are drawn from one bucket at a time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Protocol

ALIGNMENT = 64
MAX_ASPECT = 4.0
MAX_AREA_DEVIATION = 0.07  # a bucket's pixel count is within 7% of resolution**2


class HasSize(Protocol):
    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def bucket_sizes(resolution: int) -> list[tuple[int, int]]:
    """The (width, height) buckets for ``resolution``, from the widest to the tallest."""
    return list(_bucket_sizes(int(resolution)))


@functools.lru_cache(maxsize=16)
def _bucket_sizes(resolution: int) -> tuple[tuple[int, int], ...]:
    if resolution < 2 * ALIGNMENT:
        raise ValueError(f"resolution {resolution} is too small for buckets; use at least {2 * ALIGNMENT}.")
    area = resolution * resolution
    sizes = set()
    longest = int(math.sqrt(area * MAX_ASPECT))
    for long_side in range(ALIGNMENT, longest + ALIGNMENT, ALIGNMENT):
        exact = area / long_side
        below, above = math.floor(exact / ALIGNMENT) * ALIGNMENT, math.ceil(exact / ALIGNMENT) * ALIGNMENT
        candidates = [s for s in (below, above) if ALIGNMENT <= s <= long_side]
        if not candidates:
            continue
        short_side = min(candidates, key=lambda s: abs(math.log(long_side * s / area)))
        if long_side / short_side <= MAX_ASPECT and abs(long_side * short_side / area - 1) <= MAX_AREA_DEVIATION:
            sizes |= {(long_side, short_side), (short_side, long_side)}  # landscape and portrait alike
    return tuple(sorted(sizes, key=lambda s: (-s[0] / s[1], s[0])))


def bucket_for(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest to width:height (compared as log ratios)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} has no area.")
    target = math.log(width / height)
    area = resolution * resolution
    return min(
        _bucket_sizes(int(resolution)),
        key=lambda s: (abs(math.log(s[0] / s[1]) - target), abs(s[0] * s[1] - area), s[0]),
    )


def assign_buckets(records: Sequence[HasSize], resolution: int) -> dict[tuple[int, int], list[int]]:
    """bucket -> indices into ``records`` (ascending), for every bucket that received an image."""
    assignment: dict[tuple[int, int], list[int]] = {}
    for index, record in enumerate(records):
        assignment.setdefault(bucket_for(record.width, record.height, resolution), []).append(index)
    order = {size: rank for rank, size in enumerate(_bucket_sizes(int(resolution)))}
    return dict(sorted(assignment.items(), key=lambda item: order[item[0]]))


def bucket_histogram(records: Sequence[HasSize], resolution: int) -> dict[tuple[int, int], int]:
    """bucket -> number of images, in bucket order (widest first)."""
    return {size: len(indices) for size, indices in assign_buckets(records, resolution).items()}


def upscale_factor(width: int, height: int, bucket: tuple[int, int]) -> float:
    """How much an image is enlarged to cover ``bucket`` (below 1: it is reduced)."""
    return max(bucket[0] / width, bucket[1] / height)
