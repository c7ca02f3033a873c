"""``DatasetLoading``: scan the dataset folders, then check the images, in the background.

The scan (headers and captions) fills the model as soon as it ends; the image check (decoding and
hashing every file, for damage and duplicates) follows and adds its badges. A cancelled scan
stops at once and shows the images found until then, without the check. A new ``load`` cancels
the one before, drops its results, empties the model and forgets the old thumbnails.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from chroma_studio.gui.background_jobs import Job, JobRunner
from chroma_studio.gui.dataset.jobs import ScanOutcome, check_work, scan_work
from chroma_studio.gui.dataset.model import DatasetModel
from chroma_studio.gui.dataset.thumbnail_loader import ThumbnailLoader

log = logging.getLogger(__name__)

LISTED_PROBLEMS = 4
NO_IMAGES = (
    "No images were found in these folders.\nDrop a folder of images here (JPEG, PNG, WebP and other common formats)."
)
SCAN_CANCELLED = "Loading was cancelled. Choose Scan again in the folder menu to load the images."


class DatasetLoading(QObject):
    loaded = Signal(int)  # the scan ended (or was cancelled): the model now holds this many images
    checked = Signal(bool)  # the image check ended; False when it was cancelled
    status_changed = Signal(str)  # what an empty grid should say now
    message_posted = Signal(str, str)  # text, level ("warning" | "error"): problems met on the way

    def __init__(
        self, runner: JobRunner, model: DatasetModel, thumbnails: ThumbnailLoader, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._runner = runner
        self._model = model
        self._thumbnails = thumbnails
        self._folders: list[str] = []
        self._scan_job: Job | None = None
        self._check_job: Job | None = None
        runner.finished.connect(self._on_runner_finished)
        runner.failed.connect(self._on_runner_failed)

    def load(self, folders: list[str]) -> None:
        for job in (self._scan_job, self._check_job):
            if job is not None:
                self._runner.cancel(job)
        self._scan_job = self._check_job = None
        self._thumbnails.clear()
        self._model.clear()
        self._folders = list(folders)
        if self._folders:
            self.status_changed.emit("Looking for images…")
            self._scan_job = self._runner.start("scan", "Looking for images and captions…", scan_work(self._folders))

    def is_loading(self) -> bool:
        return self._scan_job is not None or self._check_job is not None

    def is_scanning(self) -> bool:
        """Whether the folders are being scanned (the model does not list all images yet)."""
        return self._scan_job is not None

    def _on_runner_finished(self, job: Job, result: object) -> None:
        if job is self._scan_job:
            self._scan_job = None
            if isinstance(result, ScanOutcome):
                self._apply_scan(job, result)
        elif job is self._check_job:
            self._check_job = None
            if isinstance(result, dict):
                self._model.add_image_findings(result)
            if job.cancelled:
                self.message_posted.emit(
                    "The image check was cancelled, so damaged files and duplicates may not all be marked. "
                    "Choose Scan again in the folder menu to check again.",
                    "warning",
                )
            self.checked.emit(not job.cancelled)

    def _on_runner_failed(self, job: Job, exc: Exception) -> None:
        if job is self._scan_job:
            self._scan_job = None
            self.status_changed.emit("The folders could not be read.")
        elif job is self._check_job:
            self._check_job = None
        else:
            return
        self.message_posted.emit(f"{job.label.rstrip('…')} failed: {exc}", "error")

    def _apply_scan(self, job: Job, outcome: ScanOutcome) -> None:
        self._model.set_items(outcome.items)
        if outcome.cancelled or job.cancelled:
            self._report_cancelled(len(outcome.items))
        else:
            self._report_problems(outcome)
            if outcome.items:
                label = "Checking images for damage and duplicates…"
                work = check_work(self._folders, self._model.resolution())
                self._check_job = self._runner.start("check", label, work)
            else:
                self.status_changed.emit(NO_IMAGES)
        self.loaded.emit(len(outcome.items))

    def _report_cancelled(self, count: int) -> None:
        self.status_changed.emit(SCAN_CANCELLED)
        self.message_posted.emit(
            f"Loading was cancelled: the {count:,} image{'s' if count != 1 else ''} found until then "
            f"{'are' if count != 1 else 'is'} shown, without the check for damage and duplicates. "
            "Choose Scan again in the folder menu to load them all.",
            "warning",
        )

    def _report_problems(self, outcome: ScanOutcome) -> None:
        """Problems of files that have no row of their own (folders, links), in the message bar."""
        shown = {item.path for item in outcome.items}
        other = [str(problem) for problem in outcome.problems if problem.path not in shown]
        if other:
            more = f"<br>…and {len(other) - LISTED_PROBLEMS} more" if len(other) > LISTED_PROBLEMS else ""
            self.message_posted.emit("<br>".join(other[:LISTED_PROBLEMS]) + more, "warning")
