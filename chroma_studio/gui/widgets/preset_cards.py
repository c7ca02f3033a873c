"""Presets as cards: a title, one line on who it is for, and whether it fits this machine."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from chroma_studio.gui.machine_info import PresetOption


class PresetCardWidget(QToolButton):
    def __init__(self, option: PresetOption, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.option = option
        self.setObjectName("presetCard")
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setMinimumSize(190, 96)
        self.setMaximumWidth(260)
        self.setProperty("fits", "unknown" if option.fits is None else ("yes" if option.fits else "no"))
        label = QLabel(self)
        label.setObjectName("presetCardText")
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        note = f"<br><small><i>{html.escape(option.note)}</i></small>" if option.note else ""
        label.setText(f"<b>{html.escape(option.title)}</b><br><small>{html.escape(option.description)}</small>{note}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(label)
        self.setToolTip(", ".join(f"{k} = {v}" for k, v in option.settings.items()))


class PresetCardsWidget(QScrollArea):
    """A row of preset cards; one can be checked."""

    preset_chosen = Signal(object)  # PresetOption

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumHeight(118)
        self.setMaximumHeight(132)
        self.cards: list[PresetCardWidget] = []
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.buttonClicked.connect(self._on_group_button_clicked)
        self._body = QWidget()
        self._row = QHBoxLayout(self._body)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.addStretch(1)
        self.setWidget(self._body)

    def set_options(self, options: list[PresetOption]) -> None:
        for card in self.cards:
            self.group.removeButton(card)
            card.deleteLater()
        self.cards = []
        for option in options:
            card = PresetCardWidget(option)
            self.cards.append(card)
            self.group.addButton(card)
            self._row.insertWidget(self._row.count() - 1, card)

    def set_checked(self, key: str | None) -> None:
        for card in self.cards:
            card.setChecked(card.option.key == key)
        if key is None and self.group.checkedButton() is not None:
            self.group.setExclusive(False)
            self.group.checkedButton().setChecked(False)
            self.group.setExclusive(True)

    def _on_group_button_clicked(self, card: PresetCardWidget) -> None:
        self.preset_chosen.emit(card.option)
