"""The Dataset page's background work, as plain functions for ``JobRunner``: scan, check, caption edits.

Each ``*_work`` returns a ``work(progress, should_stop)`` callable that runs on a pool thread
and touches no widget. A stopped scan still hands back what it found (``cancelled`` set); a
stopped caption job has put every caption back and hands back no edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chroma_studio.dataset import (
    CaptionEdit,
    CaptionError,
    EditCancelled,
    ScanProblem,
    image_extensions,
    read_caption_if_present,
    scan_folders,
)
from chroma_studio.gui.background_jobs import Progress, ShouldStop, Work
from chroma_studio.gui.dataset.check_process import check_findings
from chroma_studio.gui.dataset.items import DatasetItem, findings_by_path, items_from_scan

CaptionState = tuple[Path, str | None, str]  # caption path, text (None: no file), why unreadable ("")


@dataclass
class ScanOutcome:
    folders: list[str]
    items: list[DatasetItem] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    cancelled: bool = False  # stopped part-way: ``items`` are those found (and read) before the stop


@dataclass
class CaptionOutcome:
    edit: CaptionEdit | None  # None when there was nothing to undo or redo, or it was cancelled
    states: list[CaptionState] = field(default_factory=list)
    cancelled: bool = False  # stopped part-way: every caption is as it was before


CaptionAction = Callable[[Progress, ShouldStop], CaptionEdit | None]


def caption_state(path: Path) -> CaptionState:
    try:
        return path, read_caption_if_present(path), ""
    except CaptionError as exc:
        return path, None, exc.reason


def scan_work(folders: Sequence[str]) -> Work:
    """Find the images of ``folders`` (headers only) and read their captions.

    Stopped during the scan, it keeps the images found so far and reads their captions (a
    fraction of the time the scan took); stopped while reading captions, it keeps the images
    whose captions were read.
    """
    folders = list(folders)

    def work(progress: Progress, should_stop: ShouldStop) -> ScanOutcome:
        progress(0, 0)

        def on_scan_progress(files: int, folder: Path) -> None:
            progress(files, 0, f"{files:,} image file{'s' if files != 1 else ''} so far, in {folder.name or folder}")

        scan = scan_folders(folders, progress=on_scan_progress, should_stop=should_stop)
        items = items_from_scan(scan.images, scan.problems, image_extensions())
        outcome = ScanOutcome(folders, items, scan.problems, scan.cancelled)
        for done, item in enumerate(items, start=1):
            if should_stop() and not scan.cancelled:
                outcome.items, outcome.cancelled = items[: done - 1], True
                break
            _, item.caption, item.caption_error = caption_state(item.caption_path)
            progress(done, len(items))
        return outcome

    return work


def check_work(folders: Sequence[str], resolution: int) -> Work:
    """Decode and hash every image (in a process of its own): damaged files and duplicates, as
    image path -> {kind: message}."""
    folders = list(folders)

    def work(progress: Progress, should_stop: ShouldStop) -> dict[Path, dict[str, str]]:
        return findings_by_path(check_findings(folders, resolution, progress, should_stop))

    return work


def caption_work(action: CaptionAction) -> Work:
    """Run a caption-history action (apply, undo, redo) and read back the captions it touched."""

    def work(progress: Progress, should_stop: ShouldStop) -> CaptionOutcome:
        progress(0, 0)
        try:
            edit = action(progress, should_stop)
        except EditCancelled as exc:
            return CaptionOutcome(None, [caption_state(path) for path in exc.paths], cancelled=True)
        paths = edit.paths if edit is not None else []
        return CaptionOutcome(edit, [caption_state(path) for path in paths])

    return work
