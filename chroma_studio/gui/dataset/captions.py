"""``CaptionActions``: bulk caption edits, undo and redo for the Dataset page, run off the GUI thread.

One caption job runs at a time (it writes files the editor also writes: the page locks the editor
while ``busy``). The ``CaptionHistory`` here is shared with the caption editor, whose saves are
undo steps too, so undoing a bulk edit never trips over a caption typed since. Each job shows its
progress and can be cancelled: a cancelled job puts back every caption it wrote and leaves the
history as it was.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from chroma_studio.dataset import CaptionEdit, CaptionError, CaptionHistory, CaptionPreview
from chroma_studio.gui.background_jobs import Job, JobRunner, Progress, ShouldStop
from chroma_studio.gui.dataset.jobs import CaptionAction, CaptionOutcome, caption_work

log = logging.getLogger(__name__)


class CaptionActions(QObject):
    captions_changed = Signal(list)  # list[CaptionState]: captions as they now are on disk
    history_changed = Signal()
    busy_changed = Signal(bool)
    failed = Signal(str)  # what went wrong, for the user
    cancelled = Signal(str)  # a job was cancelled and every caption put back: what to tell the user

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.history = CaptionHistory()
        self._runner = runner
        self._job: Job | None = None
        self._what = ""  # the running job, in words
        runner.finished.connect(self._on_runner_finished)
        runner.failed.connect(self._on_runner_failed)

    def is_busy(self) -> bool:
        return self._job is not None

    def apply(self, preview: CaptionPreview) -> bool:
        """Write a previewed change set; False when another caption job is still running."""
        count = len(preview.changes)
        label = f"{preview.description}: writing {count} caption{'s' if count != 1 else ''}…"

        def action(progress: Progress, should_stop: ShouldStop) -> CaptionEdit:
            return self.history.apply(preview, progress=progress, should_stop=should_stop)

        return self._start(label, action, preview.description)

    def undo(self) -> bool:
        if not self.history.can_undo:
            return False
        description = self.history.undo_description
        return self._start(f"Undoing {description}…", self._undo, f"Undo of {description}")

    def redo(self) -> bool:
        if not self.history.can_redo:
            return False
        description = self.history.redo_description
        return self._start(f"Redoing {description}…", self._redo, f"Redo of {description}")

    def _undo(self, progress: Progress, should_stop: ShouldStop) -> CaptionEdit | None:
        return self.history.undo(progress=progress, should_stop=should_stop)

    def _redo(self, progress: Progress, should_stop: ShouldStop) -> CaptionEdit | None:
        return self.history.redo(progress=progress, should_stop=should_stop)

    def _start(self, label: str, action: CaptionAction, what: str) -> bool:
        """Run ``action`` as a job; ``what`` names it in the message shown if it is cancelled."""
        if self.is_busy():
            return False
        self._job = self._runner.start("captions", label, caption_work(action))
        self._what = what
        self.busy_changed.emit(True)
        return True

    def _on_runner_finished(self, job: Job, outcome: CaptionOutcome) -> None:
        if job is not self._job:
            return
        self._job = None
        self.busy_changed.emit(False)
        self.captions_changed.emit(outcome.states)
        if outcome.cancelled:
            self.cancelled.emit(f"{self._what} was cancelled: every caption is as it was before.")
        self.history_changed.emit()

    def _on_runner_failed(self, job: Job, exc: Exception) -> None:
        if job is not self._job:
            return
        self._job = None
        self.busy_changed.emit(False)
        if isinstance(exc, CaptionError):
            message = f"{exc.path.name} {exc.reason}"
        else:
            message = f"The captions could not be changed: {exc}"
        self.failed.emit(message)
        self.history_changed.emit()
