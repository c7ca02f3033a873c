"""Export the LoRA of a chosen checkpoint of a run (diffusers/ComfyUI layout, or kohya)."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

from chroma_studio.base.run_folder import checkpoint_dirs
from chroma_studio.gui import desktop
from chroma_studio.gui.worker import ExportWorker, connect_worker
from chroma_studio.protocol.events import Event, Failed
from chroma_studio.protocol.jobs import ExportFormat

logger = logging.getLogger(__name__)

FORMATS = (
    (ExportFormat.DIFFUSERS, "ComfyUI, diffusers, Forge (pytorch_lora_weights)"),
    (ExportFormat.KOHYA, "kohya layout"),
)


class ExportPanelWidget(QGroupBox):
    exported = Signal(str)  # the file written
    export_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Export the LoRA of a checkpoint", parent)
        self.run_dir: str | None = None
        self.worker: ExportWorker | None = None
        self.last_path = ""
        self.step_combo = QComboBox()
        self.step_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.step_combo.setToolTip("Checkpoints kept in this run's folder (Checkpoints kept under Advanced settings).")
        self.format_combo = QComboBox()
        for key, label in FORMATS:
            self.format_combo.addItem(label, key)
        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.linkActivated.connect(self._on_status_link_activated)
        layout = QHBoxLayout(self)
        layout.addWidget(QLabel("Checkpoint"))
        layout.addWidget(self.step_combo)
        layout.addWidget(QLabel("Format"))
        layout.addWidget(self.format_combo)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status, 1)
        self.set_run("")

    def set_run(self, run_dir: str) -> None:
        """List the checkpoints of ``run_dir`` (read from disk: old ones may have been pruned)."""
        combo = self.step_combo
        same_run = run_dir == self.run_dir
        self.run_dir = run_dir
        if not same_run:
            self.last_path = ""
        current = combo.currentData() if same_run and combo.currentIndex() < combo.count() - 1 else None
        combo.clear()
        for step, _path in checkpoint_dirs(Path(run_dir)) if run_dir else []:
            combo.addItem(f"Step {step}", step)
        found = combo.findData(current)
        combo.setCurrentIndex(found if found >= 0 else combo.count() - 1)  # else the newest
        has = combo.count() > 0
        self.export_button.setEnabled(has and not self.busy())
        if not self.busy() and not (same_run and self.last_path):
            self.status.setText("" if has or not run_dir else "No checkpoints in this run yet.")

    def busy(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _on_export_button_clicked(self) -> None:
        step, fmt = self.step_combo.currentData(), self.format_combo.currentData()
        if step is None or self.busy():
            return
        run_dir = self.run_dir or ""
        worker = connect_worker(
            ExportWorker(run_dir, step, fmt), self._on_worker_event_emitted, self._on_worker_finished
        )
        self.worker = worker
        self.export_button.setEnabled(False)
        self.status.setText(f"Exporting step {step}…")
        worker.start()

    @Slot(object)
    def _on_worker_finished(self, path: Any) -> None:
        if self.worker is not None:
            self.worker.wait()
        self.worker = None
        self.export_button.setEnabled(self.step_combo.count() > 0)
        if path:
            self.last_path = str(path)
            self.status.setText(f"Saved {html.escape(Path(path).name)} — <a href='show'>Show in folder</a>")
            self.exported.emit(str(path))

    @Slot(object)
    def _on_worker_event_emitted(self, event: Event) -> None:
        if isinstance(event, Failed):
            message = f"{event.message} {event.hint}".strip()
            self.status.setText(f"<span style='color:#d0342c'>Export failed: {html.escape(message)}</span>")
            self.export_failed.emit(message)

    def _on_status_link_activated(self, link: str) -> None:
        if self.last_path:
            desktop.show_in_folder(self.last_path)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.wait()
