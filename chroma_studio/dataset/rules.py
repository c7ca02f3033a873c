"""The rules that decide whether one image trains: one set, one severity, one wording.

``image_findings`` judges an image by its size at the training resolution and by its caption;
the dataset check, the Dataset page and the engine (``training.data.load_examples``) all ask it,
so they never disagree. An ``"error"`` finding leaves the image out of training, and that
finding's words are what training says about it; a ``"warning"`` keeps it in.

Damage found while decoding (``decode_finding``) and what the scan could not read
(``ScanProblem``) are findings too, with the same severities wherever they are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from chroma_studio.dataset.captions import CaptionError
from chroma_studio.dataset.findings import Finding
from chroma_studio.dataset.sizes import BELOW_RESOLUTION, TOO_SMALL, is_huge, size_fit

CAPTION_MISSING = "caption-missing"
CAPTION_EMPTY = "caption-empty"
CAPTION_UNREADABLE = "caption-unreadable"
CORRUPT = "corrupt"
HUGE = "huge"


class ImageLike(Protocol):
    """What the rules read of an image: an ``ImageRecord``, or an item of the Dataset page."""

    @property
    def path(self) -> Path: ...
    @property
    def caption_path(self) -> Path: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


Caption = str | CaptionError | None  # the text; None: no caption file; CaptionError: it cannot be read


def image_findings(image: ImageLike, resolution: int, caption: Caption) -> list[Finding]:
    """Everything the rules say about ``image`` at ``resolution`` with ``caption``, errors first."""
    findings = size_findings(image, resolution)
    found = caption_finding(image, caption)
    if found is not None:
        findings.append(found)
    return sorted(findings, key=lambda f: f.severity != "error")


def trains(findings: Iterable[Finding]) -> bool:
    """An image trains unless one of its findings is an error."""
    return not any(f.severity == "error" for f in findings)


def size_findings(image: ImageLike, resolution: int) -> list[Finding]:
    findings = []
    size = f"{image.width}x{image.height}"
    fit = size_fit(image.width, image.height, resolution)
    target = f"its {fit.bucket[0]}x{fit.bucket[1]} training shape at {resolution} px"
    if fit.problem == TOO_SMALL:
        findings.append(
            Finding(
                image.path,
                TOO_SMALL,
                f"is {size}, far too small for {target}: it would be enlarged "
                f"{fit.upscale:.1f}x and teach only blur, so it is left out of training. Use a larger original "
                "or remove it.",
                "error",
            )
        )
    elif fit.problem == BELOW_RESOLUTION:
        findings.append(
            Finding(
                image.path,
                BELOW_RESOLUTION,
                f"is {size}, smaller than {target}; it will be enlarged "
                f"{fit.upscale:.2f}x and look soft. Use a larger original, or train at a lower resolution.",
                "warning",
            )
        )
    if is_huge(image.width, image.height):
        pixels = image.width * image.height
        findings.append(
            Finding(
                image.path,
                HUGE,
                f"is {size} ({pixels / 1e6:.0f} megapixels); every load decodes "
                f"about {pixels * 4 // 2**20:,} MB. Downscale it to about {2 * resolution} px on the long side.",
                "warning",
            )
        )
    return findings


def caption_finding(image: ImageLike, caption: Caption) -> Finding | None:
    """The caption's finding: unreadable (an error: the image is left out), missing or empty (warnings)."""
    if isinstance(caption, CaptionError):
        return Finding(
            caption.path,
            CAPTION_UNREADABLE,
            f"{caption.reason} Its image is left out of training.",
            "error",
            (image.path,),
        )
    if caption is None:
        return Finding(
            image.path,
            CAPTION_MISSING,
            f"has no caption ({image.caption_path.name}), so it trains with an empty prompt; write one that "
            "describes the image.",
            "warning",
        )
    if not caption:
        return Finding(
            image.caption_path,
            CAPTION_EMPTY,
            "is empty, so its image trains with an empty prompt; describe the image in it.",
            "warning",
            (image.path,),
        )
    return None


def decode_finding(path: Path, exc: BaseException) -> Finding:
    """An image whose pixels cannot be decoded: an error, so it is left out of training."""
    return Finding(
        path,
        CORRUPT,
        f"cannot be decoded ({exc}): the file is damaged or cut short. Export or download it again, or remove it.",
        "error",
    )
