"""``MessageBarWidget``: a dismissible line of news above a page's content (not a modal box)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

LEVEL_COLOURS = {"info": "#1565c0", "warning": "#b26a00", "error": "#c62828"}


class MessageBarWidget(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "info") -> None:
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS["info"])
        self.setStyleSheet(
            f"#messageBar {{ border: 1px solid {colour}; border-left: 4px solid {colour}; border-radius: 4px; }}"
        )
        self.label.setText(text)
        self.level = level
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self) -> None:
        self.label.clear()
        self.level = ""
        self.hide()
