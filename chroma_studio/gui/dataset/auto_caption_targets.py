"""What a pass of automatic captioning works on, and how its progress reads: plain functions, no widgets.

``caption_targets`` picks the images of a scope: each caption file once, never an image training
leaves out (damaged) nor one whose caption cannot be read (a file that is not UTF-8 is never
overwritten), and, with ``only_missing``, only images without a caption (no file, or an empty
one). ``rate_text`` is the images/s and time-left part of the progress line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chroma_studio.gui.dataset.items import DatasetItem


@dataclass(frozen=True)
class CaptionTarget:
    image: Path
    caption_path: Path
    before: str  # the caption when the pass was set up ("" when there is none)


def caption_targets(items: Iterable[DatasetItem], only_missing: bool) -> list[CaptionTarget]:
    """The images of ``items`` a pass captions, in order, each caption file once."""
    targets: dict[Path, CaptionTarget] = {}
    for item in items:
        if not item.usable or item.caption_error or item.caption_path in targets:
            continue
        if only_missing and item.caption:
            continue
        targets[item.caption_path] = CaptionTarget(item.path, item.caption_path, item.caption or "")
    return list(targets.values())


def rate_text(images: int, seconds: float, left: int) -> str:
    """Speed and time left ("1.3 images/s · about 20 s left"): ``images`` done in ``seconds``, ``left`` to go."""
    if images <= 0 or seconds <= 0:
        return ""
    rate = images / seconds
    speed = f"{rate:.1f} images/s" if rate >= 0.1 else f"{seconds / images:.0f} s per image"
    if left <= 0:
        return speed
    return f"{speed} · about {duration_text(left / rate)} left"


def duration_text(seconds: float) -> str:
    """A rough duration: "45 s", "3 min", "1 h 20 min"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
