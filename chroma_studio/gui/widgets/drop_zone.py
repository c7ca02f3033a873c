"""Dropping folders and images from the file manager: the empty-state target and the shared rules.

``dropped_paths`` keeps the local folders and image files of a drag; ``folders_for_paths`` turns
them into dataset folders (an image stands for the folder it is in).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QFont, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout, QWidget

from chroma_studio.dataset import image_extensions


def dropped_paths(mime: QMimeData | None) -> list[str]:
    """The local folders and image files among the urls of ``mime``."""
    if mime is None or not mime.hasUrls():
        return []
    paths = []
    for url in mime.urls():
        if not url.isLocalFile():
            continue
        path = Path(url.toLocalFile())
        if path.is_dir() or (path.is_file() and path.suffix.lower() in image_extensions()):
            paths.append(str(path))
    return paths


def folders_for_paths(paths: Iterable[str]) -> list[str]:
    """Dataset folders for dropped paths: a folder as it is, an image file as its folder; in order, once each."""
    folders = (str(Path(p)) if Path(p).is_dir() else str(Path(p).parent) for p in paths)
    return list(dict.fromkeys(folders))


class DropZoneWidget(QFrame):
    """The big, friendly target shown while the dataset is empty."""

    paths_dropped = Signal(list)  # list[str]: folders and image files
    add_folder_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setMinimumSize(360, 260)
        arrow = QLabel("⤓")
        arrow.setAlignment(Qt.AlignmentFlag.AlignCenter)
        arrow_font = QFont(arrow.font())
        arrow_font.setPointSizeF(arrow_font.pointSizeF() * 4)
        arrow.setFont(arrow_font)
        arrow.setForegroundRole(QPalette.ColorRole.Highlight)
        title = QLabel("Drop a folder of images here")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        detail = QLabel(
            "Photos of your subject (JPEG, PNG, WebP and other common formats); 10 to 50 good ones are plenty.<br>"
            "Captions are read from text files beside them: <i>photo.jpg</i> → <i>photo.txt</i>."
        )
        detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        detail.setWordWrap(True)
        self.add_button = QPushButton("Add folder…")
        self.add_button.setMinimumSize(180, 34)
        self.add_button.setDefault(True)
        self.add_button.clicked.connect(self.add_folder_requested)
        steps = QLabel(
            "<b>1</b> Add your images &nbsp;→&nbsp; <b>2</b> Type a trigger word &nbsp;→&nbsp; <b>3</b> Press Train"
        )
        steps.setAlignment(Qt.AlignmentFlag.AlignCenter)
        steps.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(arrow)
        layout.addWidget(title)
        layout.addSpacing(6)
        layout.addWidget(detail)
        layout.addSpacing(18)
        layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        layout.addWidget(steps)
        layout.addSpacing(12)
        self._accepting = False
        self._set_highlight(False)

    def _set_highlight(self, on: bool) -> None:
        colour = "palette(highlight)" if on else "palette(mid)"
        self.setStyleSheet(f"#dropZone {{ border: 2px dashed {colour}; border-radius: 14px; }}")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._accepting = bool(dropped_paths(event.mimeData()))
        if self._accepting:
            event.acceptProposedAction()
            self._set_highlight(True)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._accepting:
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._set_highlight(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_highlight(False)
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
