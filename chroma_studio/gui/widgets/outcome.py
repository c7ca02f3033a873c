"""How a run ended: the LoRA files with "Show in folder", a stopped run's "Resume", a failure's hint."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from chroma_studio.gui import desktop


class OutcomeWidget(QFrame):
    new_run_requested = Signal()
    resume_requested = Signal(str)  # output folder
    samples_requested = Signal()
    dataset_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("outcomeBanner")
        self.title = QLabel()
        self.title.setObjectName("outcomeTitle")
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.files = QListWidget()
        self.files.setObjectName("loraFiles")
        self.files.itemDoubleClicked.connect(self._on_files_item_double_clicked)
        self.show_button = QPushButton("Show in folder")
        self.show_button.setObjectName("primaryButton")
        self.show_button.clicked.connect(self._on_show_button_clicked)
        self.samples_button = QPushButton("See all samples")
        self.samples_button.clicked.connect(self.samples_requested)
        self.resume_button = QPushButton("Resume training")
        self.resume_button.setToolTip("Continue from the last checkpoint, in the same folder.")
        self.resume_button.clicked.connect(lambda: self.resume_requested.emit(self.output_dir))
        self.dataset_button = QPushButton("Go to the dataset")
        self.dataset_button.setObjectName("primaryButton")
        self.dataset_button.setToolTip("The Dataset page, scanned again: see what training found.")
        self.dataset_button.clicked.connect(self.dataset_requested)
        self.new_button = QPushButton("New run…")
        self.new_button.setToolTip("Back to the settings to train again.")
        self.new_button.clicked.connect(self.new_run_requested)
        buttons = QHBoxLayout()
        for button in (self.show_button, self.samples_button, self.resume_button, self.dataset_button, self.new_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addWidget(self.files)
        layout.addLayout(buttons)
        self.output_dir = ""
        self.lora_path: str | None = None

    def _set_kind(self, kind: str) -> None:
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)

    def show_finished(self, model: Any) -> None:
        result = model.result
        self.dataset_button.hide()
        self.output_dir = model.output_dir
        self.lora_path = result.lora_path if result is not None else None
        stopped = model.status == "stopped"
        self.files.clear()
        for path in model.lora_files:
            item = QListWidgetItem(Path(path).name)
            item.setToolTip(path)
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.files.addItem(item)
        self.files.setVisible(bool(model.lora_files))
        self.files.setFixedHeight(
            8 + max(1, self.files.count()) * (self.files.sizeHintForRow(0) if self.files.count() else 20)
        )
        if stopped:
            self._set_kind("stopped")
            self.title.setText(f"Stopped at step {model.step}")
            saved = f" The LoRA so far is saved: {html.escape(Path(self.lora_path).name)}." if self.lora_path else ""
            self.detail.setText(
                f"A checkpoint was saved; <b>Resume training</b> continues from it.{saved}<br>"
                f"Folder: {html.escape(self.output_dir)}"
            )
        else:
            self._set_kind("finished")
            self.title.setText("Your LoRA is ready")
            self.detail.setText(
                "Load it in ComfyUI (models/loras) or diffusers; samples from every step are on the Samples page."
                f"<br>Folder: {html.escape(self.output_dir)}"
            )
        self.show_button.setVisible(bool(self.output_dir))
        self.new_button.setText("New run…")
        self.resume_button.setVisible(stopped and bool(model.checkpoints or self.output_dir))
        self.samples_button.setVisible(bool(model.samples))
        self.show()

    def show_failed(self, failure: Any, resumable: bool = False) -> None:
        """A run that failed; ``resumable`` when it saved a checkpoint before (Resume continues from it)."""
        self._set_kind("failed")
        self.title.setText("Training did not start or could not go on")
        text = f"<b>{html.escape(failure.message)}</b>"
        if failure.hint:
            text += f"<br>What to do: {html.escape(failure.hint)}"
        self.detail.setText(text)
        self.files.hide()
        self.show_button.setVisible(bool(self.output_dir) and Path(self.output_dir).is_dir())
        self.new_button.setText("Back to the settings")
        self.samples_button.hide()
        self.resume_button.setVisible(resumable and bool(self.output_dir))
        self.dataset_button.setVisible(getattr(failure, "topic", "") == "dataset")
        self.show()

    def _on_show_button_clicked(self) -> None:
        desktop.show_in_folder(self.lora_path or self.output_dir)

    def _on_files_item_double_clicked(self, item: QListWidgetItem) -> None:
        desktop.show_in_folder(item.data(Qt.ItemDataRole.UserRole))
