"""The Dataset page's background work, as plain functions for ``JobRunner``: scan, check, caption edits.

Each ``*_work`` returns a ``work(progress, should_stop)`` callable that runs on a pool thread
and touches no widget. A stopped scan still hands back what it found (``cancelled`` set); a
stopped caption job has put every caption back and hands back no edit.

The image check decodes and hashes every file with Python and Pillow code. On a thread of the
app's process it would take turns with the GUI thread for the interpreter lock and the grid
would stutter, so it runs as a ``DatasetCheckJob`` in the engine process (``protocol.remote``),
which shares nothing with the window: progress comes back as events, a cancel stops it there.
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
from chroma_studio.gui.dataset.items import DatasetItem, findings_by_path, items_from_scan
from chroma_studio.protocol import events
from chroma_studio.protocol.jobs import DatasetCheckJob
from chroma_studio.protocol.remote import RemoteControl, run_in_process, stop_when

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
    """Decode and hash every image (in the engine process): damaged files and duplicates, as
    image path -> {kind: message}. A cancelled check hands back what it found until then."""
    job = DatasetCheckJob(tuple(folders), resolution)

    def work(progress: Progress, should_stop: ShouldStop) -> dict[Path, dict[str, str]]:
        return findings_by_path(check_in_engine_process(job, progress, should_stop).findings)

    return work


def check_in_engine_process(job: DatasetCheckJob, progress: Progress, should_stop: ShouldStop) -> events.DatasetChecked:
    """Run ``job`` in the engine process; raises RuntimeError with the engine's message when it fails."""
    failures: list[events.Failed] = []

    def sink(event: events.Event) -> None:
        match event:
            case events.Progress(done=done, total=total):
                progress(done, total)
            case events.Failed():
                failures.append(event)

    control = RemoteControl()
    with stop_when(should_stop, control):
        result = run_in_process(job, sink, control)
    if isinstance(result, events.DatasetChecked):
        return result
    raise RuntimeError(failures[-1].message if failures else "the image check ended without a result")


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
