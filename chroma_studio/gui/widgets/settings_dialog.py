"""Settings: where runs go, where embeddings are cached, and which Hugging Face endpoint to use."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.gui.session import AppSettings


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Settings")
        self.output_edit = QLineEdit(settings.output_folder)
        self.cache_edit = QLineEdit(settings.cache_folder)
        self.cache_edit.setPlaceholderText("The app's cache folder")
        self.endpoint_edit = QLineEdit(settings.hf_endpoint)
        self.endpoint_edit.setPlaceholderText("https://huggingface.co")
        form = QFormLayout()
        form.addRow("Output folder", self._with_browse(self.output_edit))
        form.addRow("", self._hint("Each run gets its own folder here: LoRA files, samples, checkpoints."))
        form.addRow("Cache folder", self._with_browse(self.cache_edit))
        form.addRow("", self._hint("Text and image embeddings are cached here, so a second run starts faster."))
        form.addRow("Hugging Face endpoint", self.endpoint_edit)
        form.addRow(
            "", self._hint("A mirror such as https://hf-mirror.com; takes effect the next time the app starts.")
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    @staticmethod
    def _hint(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("hintLabel")
        label.setWordWrap(True)
        return label

    def _with_browse(self, edit: QLineEdit) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(lambda: self._browse(edit))
        row.addWidget(button)
        return box

    def _browse(self, edit: QLineEdit) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if chosen:
            edit.setText(chosen)

    def accept(self) -> None:
        self.settings.output_folder = self.output_edit.text().strip()
        self.settings.cache_folder = self.cache_edit.text().strip()
        self.settings.hf_endpoint = self.endpoint_edit.text().strip()
        super().accept()
