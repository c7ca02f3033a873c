"""A sample image at full size, with its step and prompt."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget

from chroma_studio.gui import desktop
from chroma_studio.gui.run_model import SampleImage


class ImageViewerDialog(QDialog):
    def __init__(self, sample: SampleImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample = sample
        self.setWindowTitle(f"Sample at step {sample.step}")
        pixmap = QPixmap(sample.path)
        image = QLabel()
        image.setObjectName("sampleImage")
        image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if pixmap.isNull():
            image.setText(f"Cannot read {sample.path}")
        else:
            if pixmap.width() < 512:  # small previews (the demo renders 64 px) are enlarged to be seen
                pixmap = pixmap.scaled(
                    512, 512, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
                )
            image.setPixmap(pixmap)
        scroll = QScrollArea()
        scroll.setWidget(image)
        scroll.setWidgetResizable(True)
        caption = QLabel(f"<b>Step {sample.step}</b> — {sample.prompt}")
        caption.setWordWrap(True)
        caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        show = buttons.addButton("Show in folder", QDialogButtonBox.ButtonRole.ActionRole)
        show.clicked.connect(lambda: desktop.show_in_folder(sample.path))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll, 1)
        layout.addWidget(caption)
        layout.addWidget(buttons)
        self.resize(620, 680)
