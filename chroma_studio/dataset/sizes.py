"""The size rule for one image: does it suit training at a resolution, and if not, how badly?

An image trains in the bucket nearest its aspect ratio (see ``buckets``), scaled to cover it:
- ``"below-resolution"`` (a warning): the bucket is larger than the image in some side, so
  training enlarges it and it looks soft;
- ``"too-small"`` (an error): training would enlarge it more than ``TOO_SMALL_UPSCALE`` times
  (at 1024 px, a square image under 256 px), which teaches only blur;
- ``HUGE_PIXELS``: above it an image is decoded in full on every load (a warning of the check).

The image check and the Dataset page both judge sizes here, so they always agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from chroma_studio.dataset.buckets import bucket_for, upscale_factor

TOO_SMALL = "too-small"
BELOW_RESOLUTION = "below-resolution"
TOO_SMALL_UPSCALE = 4.0
HUGE_PIXELS = 64_000_000


@dataclass(frozen=True)
class SizeFit:
    """How an image of some size trains at a resolution."""

    bucket: tuple[int, int]  # (width, height) of its training shape
    upscale: float  # how much it is enlarged to cover the bucket (below 1: reduced)

    @property
    def problem(self) -> str | None:
        """``TOO_SMALL``, ``BELOW_RESOLUTION`` or None."""
        if self.upscale > TOO_SMALL_UPSCALE:
            return TOO_SMALL
        if self.upscale > 1:
            return BELOW_RESOLUTION
        return None


@functools.lru_cache(maxsize=4096)  # datasets repeat a few sizes many times
def size_fit(width: int, height: int, resolution: int) -> SizeFit:
    """The bucket of a ``width`` x ``height`` image at ``resolution`` and how much it is enlarged.
    Raises ValueError for an image with no area."""
    bucket = bucket_for(width, height, resolution)
    return SizeFit(bucket, upscale_factor(width, height, bucket))


def size_problem(width: int, height: int, resolution: int) -> str | None:
    """``"too-small"``, ``"below-resolution"`` or None for an image of this size at ``resolution``."""
    return size_fit(width, height, resolution).problem


def is_huge(width: int, height: int) -> bool:
    return width * height > HUGE_PIXELS
