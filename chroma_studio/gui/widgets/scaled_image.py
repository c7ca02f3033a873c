"""A picture that fills its box and keeps its aspect ratio (small previews are enlarged)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ScaledImageWidget(QLabel):
    clicked = Signal()

    def __init__(self, parent: QWidget | None = None, minimum: int = 160) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.path: str | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(minimum, minimum)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_path(self, path: str | None) -> None:
        self.path = path
        self._pixmap = QPixmap(path) if path else QPixmap()
        if self._pixmap.isNull():
            super().setPixmap(QPixmap())
            self.setText("No sample at this step" if path is None else f"Cannot read {Path(path).name}")
        else:
            self.setText("")
            self._rescale()

    def has_image(self) -> bool:
        return not self._pixmap.isNull()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def _rescale(self) -> None:
        if not self._pixmap.isNull():
            super().setPixmap(
                self._pixmap.scaled(
                    self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                )
            )
