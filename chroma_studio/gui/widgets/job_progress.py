"""``JobProgressWidget``: one line that shows the running background job, its progress and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from chroma_studio.gui.background_jobs import Job, JobRunner


class JobProgressWidget(QWidget):
    """Follows a ``JobRunner``: visible while a job that is not cancelled runs (the newest one is shown)."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(320)
        self.bar.setMaximumHeight(16)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._job: Job | None = None
        for signal in (runner.started, runner.progressed, runner.cancelled):
            signal.connect(self._on_runner_changed)
        runner.finished.connect(self._on_runner_changed)
        runner.failed.connect(self._on_runner_changed)
        self.hide()

    def job(self) -> Job | None:
        return self._job

    def _on_runner_changed(self, *_args: object) -> None:
        jobs = [job for job in self.runner.running() if not job.cancelled]
        self._job = jobs[-1] if jobs else None
        if self._job is None:
            self.hide()
            return
        job = self._job
        if job.total:
            self.bar.setRange(0, job.total)
            self.bar.setValue(job.done)
            count = f"{job.done:,} of {job.total:,}"
        else:
            self.bar.setRange(0, 0)  # busy indicator while the amount is unknown
            count = ""
        self.label.setText(" ".join(part for part in (job.label, count, job.detail) if part))
        self.cancel_button.setVisible(job.cancellable)
        self.show()

    def _on_cancel_button_clicked(self) -> None:
        if self._job is not None:
            self.runner.cancel(self._job)
