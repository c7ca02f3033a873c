"""``AutoCaptionRun``: one pass of automatic captioning on the Dataset page, from start to its undo step.

The captioner runs as a ``CaptionJob`` in the engine process (``protocol.remote``: the window never
loads torch or transformers), on the page's ``JobRunner``, so the page's progress line shows it
with images/s, the time left and Cancel. The engine writes nothing: each ``CaptionMade`` comes back
here, on the GUI thread, and is written through the page's ``CaptionHistory`` into one undo step
(``grow_step``) however long the pass takes, so one undo takes back the whole pass.

The pass pauses after the first ``PREVIEW_COUNT`` captions (they are written, and shown): ``accept``
lets it go on, ``change_style`` stops it and puts those captions back (``withdraw_step``), and
``cancel`` stops it and keeps what was written. A caption the user edits during the pass is
skipped: it is never overwritten (its save is noted with ``note_user_edit``, and the history
refuses to write over a caption that no longer reads as it did when the pass began).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from chroma_studio.dataset import CaptionChange, CaptionError, CaptionHistory, read_caption
from chroma_studio.gui.background_jobs import Job, JobRunner, Progress, ShouldStop
from chroma_studio.gui.dataset.auto_caption_targets import CaptionTarget, rate_text
from chroma_studio.gui.dataset.jobs import CaptionState, caption_state
from chroma_studio.protocol import events
from chroma_studio.protocol.jobs import CaptionJob
from chroma_studio.protocol.remote import RemoteControl, run_in_process, stop_when

log = logging.getLogger(__name__)

PREVIEW_COUNT = 4
JOB_NAME = "auto-caption"
Backend = Callable[[CaptionJob, events.Sink, RemoteControl], Any]  # ``run_in_process``'s shape


class Stage(Enum):
    IDLE = "idle"
    STARTING = "starting"  # loading (or downloading) the captioner, writing the first captions
    PREVIEW = "preview"  # the first captions are written; waiting for accept or change_style
    RUNNING = "running"  # accepted: the rest are being written
    WITHDRAWING = "withdrawing"  # change_style: stopping, then putting the first captions back
    STOPPING = "stopping"  # cancelled: stopping, keeping what was written


@dataclass
class PassOutcome:
    """How a pass ended, for the message the page shows."""

    written: list[Path] = field(default_factory=list)  # caption files written, in order
    edited: list[Path] = field(default_factory=list)  # skipped: the user edited them during the pass
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (image, reason) the captioner skipped
    cancelled: bool = False
    withdrawn: bool = False  # Change style: the captions written were put back
    failure: str = ""  # why the pass could not go on ("" when it did)
    seconds: float = 0.0


class _EventRelay(QObject):
    received = Signal(object)  # an engine event, from the runner's thread to the GUI thread


class AutoCaptionRun(QObject):
    stage_changed = Signal(object)  # Stage
    caption_written = Signal(object, str)  # image (Path), caption: in the order they are written
    captions_changed = Signal(list)  # list[CaptionState]: captions as they now are on disk
    status_changed = Signal(str)  # what the engine is doing, in words (loading, downloading ...)
    ended = Signal(object)  # PassOutcome: the pass is over (also after change_style, with nothing kept)

    def __init__(
        self,
        runner: JobRunner,
        history: CaptionHistory,
        backend: Backend = run_in_process,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner, self.history, self.backend = runner, history, backend
        self.stage = Stage.IDLE
        self.outcome = PassOutcome()
        self.preview: list[tuple[Path, str]] = []  # (image, caption) of the first captions
        self.prepare_write: Callable[[Path], None] = lambda _caption_path: None  # the page saves typing first
        self._targets: dict[str, CaptionTarget] = {}
        self._user_edited: set[Path] = set()
        self._key: object | None = None
        self._job: Job | None = None
        self._job_over = False  # the engine job has ended (the pass may still wait in its preview)
        self._control: RemoteControl | None = None
        self._description = ""
        self._relay = _EventRelay(self)
        self._relay.received.connect(self._on_relay_received)
        runner.finished.connect(self._on_runner_finished)
        runner.failed.connect(self._on_runner_failed)
        runner.cancelled.connect(self._on_runner_cancelled)

    @property
    def active(self) -> bool:
        return self.stage is not Stage.IDLE

    def job(self) -> Job | None:
        return self._job

    @property
    def job_over(self) -> bool:
        """The engine job has ended (a pass of no more images than the preview waits there to be kept)."""
        return self._job_over

    # -- verbs ----------------------------------------------------------------------------------------
    def start(self, targets: Sequence[CaptionTarget], job: CaptionJob) -> bool:
        """Caption ``targets`` with ``job``'s settings (its images are replaced by the targets')."""
        if self.active or not targets:
            return False
        self._targets = {str(target.image): target for target in targets}
        self._user_edited.clear()
        self._key = object()  # names this pass's undo step
        count = len(targets)
        self._description = f"Caption {count} image{'s' if count != 1 else ''}"
        self.outcome, self.preview = PassOutcome(), []
        self._control = RemoteControl()
        job = dataclasses.replace(job, images=tuple(self._targets), pause_after=PREVIEW_COUNT)
        self._job_over = False
        self._job = self.runner.start(JOB_NAME, "Captioning images", self._work(job, self._control))
        self._set_stage(Stage.STARTING)
        return True

    def accept(self) -> None:
        """Go on with the rest after the first captions (keep them, when there were no more)."""
        if self.stage is not Stage.PREVIEW:
            return
        self._set_stage(Stage.RUNNING)
        if self._job_over:
            self._end()
        elif self._control is not None:
            self._control.resume()

    def change_style(self) -> None:
        """Stop, and put back the captions written so far (the dialog lets the user choose again)."""
        if self.stage in (Stage.STARTING, Stage.PREVIEW):
            self._stop(Stage.WITHDRAWING)

    def cancel(self) -> None:
        """Stop, keeping the captions written so far (one undo step)."""
        if self.stage in (Stage.STARTING, Stage.PREVIEW, Stage.RUNNING):
            self._stop(Stage.STOPPING)

    def _stop(self, stage: Stage) -> None:
        self._set_stage(stage)
        if self._job_over:
            self._end()
        elif self._job is not None:
            self.runner.cancel(self._job)

    def note_user_edit(self, caption_path: Path) -> None:
        """The user saved this caption during the pass: the pass leaves it alone."""
        if self.active:
            self._user_edited.add(Path(caption_path))

    # -- on the runner's thread -------------------------------------------------------------------------
    def _work(self, job: CaptionJob, control: RemoteControl) -> Callable[[Progress, ShouldStop], Any]:
        relay = self._relay

        def work(progress: Progress, should_stop: ShouldStop) -> Any:
            clock = _RateClock(len(job.images))
            progress(0, len(job.images), "loading the captioner")

            def sink(event: events.Event) -> None:
                match event:
                    case events.CaptionMade() | events.CaptionSkipped():
                        clock.count()
                        progress(clock.done, clock.total, clock.detail())
                    case events.PhaseChanged(phase=events.Phase.PAUSED):
                        clock.pause()
                relay.received.emit(event)

            with stop_when(should_stop, control):
                return self.backend(job, sink, control)

        return work

    # -- back on the GUI thread -------------------------------------------------------------------------
    def _on_relay_received(self, event: events.Event) -> None:
        if self._job is None:
            return
        match event:
            case events.CaptionMade(image=image, caption=caption):
                self._write(image, caption)
            case events.CaptionSkipped(image=image, reason=reason):
                self.outcome.unreadable.append((image, reason))
            case events.PhaseChanged(phase=events.Phase.PAUSED):
                if self.stage is Stage.STARTING:
                    self._set_stage(Stage.PREVIEW)
            case events.PhaseChanged(phase=phase, detail=detail) if self.stage is Stage.STARTING:
                self.status_changed.emit(detail or f"{phase.capitalize()}…")
            case events.Progress(task=task, done=done, total=total, unit=unit) if unit != "images":
                if self.stage is Stage.STARTING:  # a download before the first caption
                    self.status_changed.emit(_download_text(task, done, total, unit))
            case events.Failed(message=message, hint=hint):
                self.outcome.failure = f"{message} {hint}".strip()
            case events.CaptioningFinished(seconds=seconds):
                self.outcome.seconds = seconds

    def _write(self, image: str, caption: str) -> None:
        target = self._targets.get(image)
        if target is None or self.stage in (Stage.WITHDRAWING, Stage.STOPPING, Stage.IDLE):
            return  # stopped: what was already on its way is not written
        path = target.caption_path
        self.prepare_write(path)
        if path in self._user_edited:
            self.outcome.edited.append(path)
            return
        try:
            self.history.grow_step(self._key, [CaptionChange(path, target.before, caption)], self._description)
        except CaptionError as exc:
            if _reads_as(path, target.before):  # not an edit: the write itself failed
                log.warning("caption not written: %s", exc)
                self.outcome.unreadable.append((image, f"{path.name} {exc.reason}"))
            else:
                self.outcome.edited.append(path)
            return
        self.outcome.written.append(path)
        if len(self.preview) < PREVIEW_COUNT:
            self.preview.append((target.image, caption))
        self.captions_changed.emit([caption_state(path)])
        self.caption_written.emit(target.image, caption)

    def _on_runner_finished(self, job: Job, _result: object) -> None:
        if job is not self._job:
            return
        self._job_over = True
        if self.stage is Stage.STARTING and not self.outcome.failure and self.outcome.written:
            self._set_stage(Stage.PREVIEW)  # no more images than the preview: all are written, keep them or not
            return
        self._end()

    def _on_runner_cancelled(self, job: Job) -> None:
        if job is self._job and self.stage in (Stage.STARTING, Stage.PREVIEW, Stage.RUNNING):
            self._set_stage(Stage.STOPPING)  # the page's Cancel: keep what was written

    def _on_runner_failed(self, job: Job, exc: object) -> None:
        if job is not self._job:
            return
        self._job_over = True
        self.outcome.failure = f"The captioner could not run: {exc}"
        self._end()

    def _end(self) -> None:
        withdrawing = self.stage is Stage.WITHDRAWING
        self.outcome.cancelled = self.stage in (Stage.WITHDRAWING, Stage.STOPPING) or self.outcome.cancelled
        states: list[CaptionState] = []
        if withdrawing:
            try:
                step = self.history.withdraw_step(self._key)
            except CaptionError as exc:
                self.history.end_step(self._key)
                self.outcome.failure = (
                    f"{exc.path.name} {exc.reason} The captions of this pass were kept; Undo takes them back."
                )
            else:
                states = [caption_state(path) for path in (step.paths if step is not None else [])]
                self.outcome.written, self.outcome.withdrawn = [], True
        else:
            self.history.end_step(self._key)
        self._job, self._control, self._key = None, None, None
        self._set_stage(Stage.IDLE)
        if states:
            self.captions_changed.emit(states)
        self.ended.emit(self.outcome)

    def _set_stage(self, stage: Stage) -> None:
        if stage is not self.stage:
            self.stage = stage
            self.stage_changed.emit(stage)


class _RateClock:
    """Images done, images/s since the newest start or resume, and the time left, for the progress line."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self._clock = total, 0, clock
        self._since: tuple[float, int] | None = None  # (time, done) where the rate is counted from

    def count(self) -> None:
        self.done += 1
        if self._since is None:
            self._since = (self._clock(), self.done)  # the first image after a start or pause sets the clock

    def pause(self) -> None:
        self._since = None

    def detail(self) -> str:
        if self._since is None:
            return ""
        seconds, images = self._clock() - self._since[0], self.done - self._since[1]
        rate = rate_text(images, seconds, self.total - self.done)
        return f"· {rate}" if rate else ""


def _reads_as(path: Path, text: str) -> bool:
    try:
        return read_caption(path) == text
    except CaptionError:
        return False


def _download_text(task: str, done: int, total: int, unit: str) -> str:
    if unit.lower() in ("b", "bytes") and total:
        return f"{task}: {done / 1e9:.2f} of {total / 1e9:.2f} GB"
    return f"{task}: {done:,} of {total:,} {unit}".rstrip() if total else f"{task}…"
