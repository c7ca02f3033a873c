"""A run as it happens: controls, progress, the loss chart, memory, samples, the log, the outcome."""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.base.run_folder import checkpoint_dirs
from chroma_studio.base.units import format_amount, format_bytes
from chroma_studio.gui import desktop
from chroma_studio.gui.run_model import RunModel
from chroma_studio.gui.widgets.image_viewer import ImageViewerDialog
from chroma_studio.gui.widgets.latest_samples import LatestSamplesWidget
from chroma_studio.gui.widgets.loss_chart import LossChartWidget
from chroma_studio.gui.widgets.outcome import OutcomeWidget
from chroma_studio.protocol.events import log_text

logger = logging.getLogger(__name__)

STATUS_TEXT = {
    "idle": "Ready",
    "starting": "Starting…",
    "running": "Training",
    "paused": "Paused",
    "stopping": "Stopping — saving a checkpoint…",
    "finished": "Finished",
    "stopped": "Stopped",
    "failed": "Failed",
}


PHASE_TEXT = {
    "loading": "Loading",
    "caching": "Preparing captions and images",
    "sampling": "Rendering samples",
    "saving": "Saving a checkpoint",
    "paused": "Paused",
}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def show_progress(bar: QProgressBar, done: int, total: int) -> None:
    """Show ``done`` of ``total`` (any size: byte counts overflow a progress bar's int); busy if total is 0."""
    if total <= 0:
        bar.setRange(0, 0)
        return
    bar.setRange(0, 1000)
    bar.setValue(round(1000 * min(done, total) / total))


class RunViewWidget(QWidget):
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    sample_requested = Signal()
    save_requested = Signal()
    new_run_requested = Signal()
    resume_run_requested = Signal(str)  # output folder of a stopped run
    samples_requested = Signal()
    dataset_requested = Signal()  # a run failed on its dataset

    def __init__(self, model: RunModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.status_label = QLabel()
        self.status_label.setObjectName("runStatus")
        self.phase_label = QLabel()
        self.phase_label.setObjectName("hintLabel")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the run after this step; a checkpoint and the LoRA are saved.")
        self.sample_button = QPushButton("Sample now")
        self.sample_button.setToolTip("Render the sample prompts after this step.")
        self.save_button = QPushButton("Save now")
        self.save_button.setToolTip("Save a resumable checkpoint after this step.")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.sample_button.clicked.connect(self.sample_requested)
        self.save_button.clicked.connect(self.save_requested)

        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.stats_label = QLabel()
        self.stats_label.setObjectName("runStats")
        # its text changes every step: a fixed size policy keeps that from relaying out the page
        self.stats_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.task_label = QLabel()
        self.task_bar = QProgressBar()
        self.task_bar.setMaximumHeight(10)
        self.task_bar.setTextVisible(False)
        self.memory_label = QLabel()
        self.memory_label.setObjectName("hintLabel")

        self.chart = LossChartWidget()
        self.chart.set_series(model.series)
        self.samples = LatestSamplesWidget()
        self.samples.setMinimumWidth(200)
        self.samples.all_requested.connect(self.samples_requested)
        self.samples.sample_activated.connect(self._on_samples_sample_activated)
        self.viewer: ImageViewerDialog | None = None
        self.log = QPlainTextEdit()
        self.log.setObjectName("runLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log_toggle = QToolButton()
        self.log_toggle.setText("Log")
        self.log_toggle.setCheckable(True)
        self.log_toggle.setChecked(True)
        self.log_toggle.toggled.connect(self.log.setVisible)
        self.outcome = OutcomeWidget()
        self.outcome.new_run_requested.connect(self.new_run_requested)
        self.outcome.resume_requested.connect(self.resume_run_requested)
        self.outcome.samples_requested.connect(self.samples_requested)
        self.outcome.dataset_requested.connect(self.dataset_requested)
        self.outcome.hide()

        self._build_layout()
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._on_ticker_timeout)
        self._bind()
        self._on_model_cleared()

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        title = QVBoxLayout()
        title.addWidget(self.status_label)
        title.addWidget(self.phase_label)
        controls.addLayout(title, 1)
        for button in (self.pause_button, self.stop_button, self.sample_button, self.save_button):
            controls.addWidget(button)
        progress = QVBoxLayout()
        progress.addWidget(self.progress)
        stats = QHBoxLayout()
        stats.addWidget(self.stats_label, 1)
        stats.addWidget(self.memory_label)
        progress.addLayout(stats)
        task = QHBoxLayout()
        task.addWidget(self.task_label)
        task.addWidget(self.task_bar, 1)
        progress.addLayout(task)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.chart)
        top.addWidget(self.samples)
        top.setStretchFactor(0, 4)
        top.setStretchFactor(1, 1)
        top.setSizes([960, 260])
        log_box = QWidget()
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_layout.addWidget(self.log_toggle, 0, Qt.AlignmentFlag.AlignLeft)
        log_layout.addWidget(self.log, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(log_box)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([520, 130])

        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.outcome)
        layout.addLayout(progress)
        layout.addWidget(split, 1)

    def _bind(self) -> None:
        m = self.model
        m.cleared.connect(self._on_model_cleared)
        m.status_changed.connect(self._on_model_status_changed)
        m.phase_changed.connect(self._on_model_phase_changed)
        m.planned.connect(self._on_model_planned)
        m.steps_added.connect(self._on_model_steps_added)
        m.sample_added.connect(self.samples.add_sample)
        m.memory_changed.connect(self._on_model_memory_changed)
        m.progress_changed.connect(self._on_model_progress_changed)
        m.log_added.connect(self._on_model_log_added)
        m.run_finished.connect(self._on_model_run_finished)
        m.run_failed.connect(self._on_model_run_failed)

    # -- model -> widgets ------------------------------------------------------------------
    def _on_model_cleared(self) -> None:
        self.log.clear()
        self.samples.all_button.show()
        self.samples.set_samples(list(self.model.samples))
        self.chart.redraw()
        self.outcome.hide()
        self.task_label.hide()
        self.task_bar.hide()
        self.memory_label.clear()
        self._on_model_status_changed(self.model.status)

    def _on_model_status_changed(self, status: str) -> None:
        self.status_label.setText(STATUS_TEXT.get(status, status))
        active = self.model.active
        for button in (self.pause_button, self.stop_button, self.sample_button, self.save_button):
            button.setVisible(active)
            button.setEnabled(status in ("running", "paused"))
        self.stop_button.setEnabled(status in ("starting", "running", "paused"))
        self.pause_button.setText("Resume" if status == "paused" else "Pause")
        if status in ("finished", "stopped", "failed"):
            self.phase_label.clear()
        if active and not self._ticker.isActive():
            self._ticker.start()
        elif not active:
            self._ticker.stop()
        self._update_stats()

    def _on_model_phase_changed(self, phase: str, detail: str) -> None:
        name = PHASE_TEXT.get(phase)
        if name is None:  # training: the stats line says the step
            text = ""
        elif not detail:
            text = name
        elif detail.lower().startswith(phase):  # "Paused at step 5" says it all
            text = detail
        else:
            text = f"{name}: {detail}"
        self.phase_label.setText(text)
        if phase not in ("loading", "caching"):
            self.task_label.hide()
            self.task_bar.hide()

    def _on_model_planned(self, total: int, start: int) -> None:
        self._update_stats()

    def _on_model_steps_added(self) -> None:
        self.chart.mark_dirty()
        self._update_stats()

    def _on_model_memory_changed(self, report: Any) -> None:
        self.memory_label.setText(
            f"{report.device.upper()} memory: {format_bytes(report.allocated, si=True)} in use · "
            f"{format_bytes(report.peak, si=True)} peak"
        )

    def _on_model_progress_changed(self, task: str, done: int, total: int, unit: str) -> None:
        amount = format_amount(done, unit) + (f" of {format_amount(total, unit)}" if total else "")
        self.task_label.setText(f"{task}: {amount}")
        show_progress(self.task_bar, done, total)
        finished = bool(total) and done >= total
        self.task_label.setVisible(True)
        self.task_bar.setVisible(not finished)

    def _on_model_log_added(self, level: str, message: str) -> None:
        if level == "history":  # a line of the run's log.txt, stamped already
            self.log.appendPlainText(message)
            return
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {log_text(level, message)}")

    def _on_model_run_finished(self, result: Any) -> None:
        self.chart.redraw()
        self._update_stats()
        self.outcome.show_finished(self.model)
        self.samples.all_button.setVisible(not self.outcome.samples_button.isVisibleTo(self.outcome))  # once is enough
        self._keep_log_at_end()

    def _on_model_run_failed(self, failure: Any) -> None:
        self.outcome.output_dir = self.model.output_dir
        saved = checkpoint_dirs(self.model.output_dir) if self.model.output_dir else []
        self.outcome.show_failed(failure, resumable=bool(saved))  # from the disk: a resumed run counts too
        self._keep_log_at_end()

    def _keep_log_at_end(self) -> None:
        """The outcome card takes room from the log: scroll it back to its last line once laid out."""
        bar = self.log.verticalScrollBar()
        QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))

    def _update_stats(self) -> None:
        m = self.model
        total = max(m.total_steps, m.step, 1)
        self.progress.setRange(0, total)
        self.progress.setValue(m.step)
        preparing = m.active and m.step == m.start_step and m.phase in ("", "loading", "caching")
        if preparing:  # nothing trained yet: a busy bar, no rate or ETA to speak of
            self.progress.setRange(0, 0)
        parts = [f"Step {m.step} of {m.total_steps or '?'}"]
        if m.status == "paused":
            parts.append("paused")
        elif m.active and not preparing:
            parts.append(f"{m.steps_per_second():.2f} it/s")
            parts.append(f"ETA {format_duration(m.eta_seconds())}")
        if m.last_loss is not None:
            smoothed = m.series.smoothed[-1] if len(m.series) else m.last_loss
            parts.append(f"loss {m.last_loss:.4f} (average {smoothed:.4f})")
        if m.learning_rate is not None:
            parts.append(f"learning rate {m.learning_rate:.2g}")
        self.stats_label.setText(" · ".join(parts))

    def _on_ticker_timeout(self) -> None:
        self._update_stats()

    # -- widgets -> requests ---------------------------------------------------------------
    def _on_pause_button_clicked(self) -> None:
        if self.model.status == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def _on_samples_sample_activated(self, sample: Any) -> None:
        self.viewer = ImageViewerDialog(sample, self)
        self.viewer.open()

    def show_folder(self) -> None:
        if self.model.output_dir:
            desktop.show_in_folder(self.model.output_dir)
