"""What a dataset check reports: findings (one problem each, with what to do) and the figures behind them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chroma_studio.dataset.scan import ImageRecord

SEVERITIES = ("error", "warning", "info")
LISTED_NAMES = 5  # files named in a message before "and N more"


@dataclass(frozen=True)
class Finding:
    path: Path | None  # the file or folder concerned; None for the dataset as a whole
    code: str  # a stable identifier, e.g. "near-duplicate"
    message: str  # the problem and what to do, written to follow the file name
    severity: str  # "error" | "warning" | "info"
    related: tuple[Path, ...] = ()  # other files involved (the rest of a duplicate group)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path is not None else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": None if self.path is None else str(self.path),
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "related": [str(p) for p in self.related],
        }


def name_list(paths: Sequence[Path]) -> str:
    """'a.png, b.png and 3 more': file names for a message."""
    shown = ", ".join(p.name for p in paths[:LISTED_NAMES])
    return shown + (f" and {len(paths) - LISTED_NAMES} more" if len(paths) > LISTED_NAMES else "")


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; by code and path within each."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.code, str(f.path or "")))


@dataclass
class CaptionStats:
    """Figures about the non-empty captions that the diversity findings are based on."""

    captions: int = 0
    missing: int = 0
    empty: int = 0
    unreadable: int = 0
    words_min: int = 0
    words_median: float = 0.0
    words_mean: float = 0.0
    words_max: int = 0
    length_histogram: dict[str, int] = field(default_factory=dict)  # "0-4" words -> captions
    total_tokens: int = 0
    distinct_tokens: int = 0
    near_identical: int = 0  # captions in a group of near-identical ones

    @property
    def distinct_ratio(self) -> float:
        """Distinct words / all words: 1.0 when no word repeats."""
        return self.distinct_tokens / self.total_tokens if self.total_tokens else 0.0

    @property
    def root_ratio(self) -> float:
        """Distinct words / sqrt(all words) (Guiraud's index): unlike the plain ratio it does not
        fall just because the dataset is larger, so one threshold serves 10 images and 10,000."""
        return self.distinct_tokens / self.total_tokens**0.5 if self.total_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "captions": self.captions,
            "missing": self.missing,
            "empty": self.empty,
            "unreadable": self.unreadable,
            "words": {
                "min": self.words_min,
                "median": self.words_median,
                "mean": round(self.words_mean, 2),
                "max": self.words_max,
            },
            "length_histogram": dict(self.length_histogram),
            "total_tokens": self.total_tokens,
            "distinct_tokens": self.distinct_tokens,
            "distinct_ratio": round(self.distinct_ratio, 4),
            "root_ratio": round(self.root_ratio, 3),
            "near_identical": self.near_identical,
        }


@dataclass
class CheckReport:
    folders: list[Path]
    resolution: int
    trigger_word: str | None
    images: list[ImageRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    buckets: dict[tuple[int, int], int] = field(default_factory=dict)  # bucket -> images
    captions: CaptionStats = field(default_factory=CaptionStats)
    cancelled: bool = False

    def by_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self.by_severity("error")

    @property
    def warnings(self) -> list[Finding]:
        return self.by_severity("warning")

    @property
    def ok(self) -> bool:
        """No errors (warnings are allowed) and the check ran to the end."""
        return not self.errors and not self.cancelled

    @property
    def weighted_images(self) -> int:
        """Images seen per epoch, counting folder repeats."""
        return sum(record.repeats for record in self.images)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folders": [str(f) for f in self.folders],
            "resolution": self.resolution,
            "trigger_word": self.trigger_word,
            "images": len(self.images),
            "images_per_epoch": self.weighted_images,
            "cancelled": self.cancelled,
            "counts": {severity: len(self.by_severity(severity)) for severity in SEVERITIES},
            "findings": [f.to_dict() for f in self.findings],
            "buckets": [{"width": w, "height": h, "images": n} for (w, h), n in self.buckets.items()],
            "captions": self.captions.to_dict(),
        }
