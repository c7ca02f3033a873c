"""Presets as cards: a title, one line on who it is for, and whether it fits this machine.

The cards wrap into as many rows as the width needs, so no card is cut off and every card's text
is shown whole. A card made for hardware this machine does not have says so in words, not only by
its dashed border; the page asks before it applies such a card (``TrainPage``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from chroma_studio.gui.machine_info import PresetOption, describe_settings

CARD_MIN_WIDTH = 200
CARD_SPACING = 8
CARD_MARGINS = (10, 8, 10, 8)  # left, top, right, bottom


def card_text(option: PresetOption) -> str:
    """The card's rich text: title, who it is for, and whether it fits (a warning when it does not)."""
    text = f"<b>{html.escape(option.title)}</b><br><small>{html.escape(option.description)}</small>"
    if option.fits is False and option.note:
        text += f"<br><small><span style='color:#b7791f'>⚠ {html.escape(option.note)}</span></small>"
    elif option.note:
        text += f"<br><small><i>{html.escape(option.note)}</i></small>"
    return text


class PresetCardWidget(QToolButton):
    def __init__(self, option: PresetOption, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.option = option
        self.setObjectName("presetCard")
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setProperty("fits", "unknown" if option.fits is None else ("yes" if option.fits else "no"))
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.label = QLabel(self)
        self.label.setObjectName("presetCardText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.label.setText(card_text(option))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(*CARD_MARGINS)
        layout.addWidget(self.label)
        settings = html.escape(describe_settings(option.settings)).replace("\n", "<br>")
        note = f"<br><i>{html.escape(option.note)}</i>" if option.note else ""
        self.setToolTip(f"<b>{html.escape(option.title)}</b><br>{html.escape(option.description)}{note}<br>{settings}")

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        left, top, right, bottom = CARD_MARGINS
        return self.label.heightForWidth(max(1, width - left - right)) + top + bottom

    def sizeHint(self) -> QSize:
        return QSize(CARD_MIN_WIDTH, self.heightForWidth(CARD_MIN_WIDTH))

    def minimumSizeHint(self) -> QSize:
        return QSize(CARD_MIN_WIDTH, 0)


class PresetCardsWidget(QWidget):
    """Preset cards in rows that wrap to the width; one can be checked."""

    preset_chosen = Signal(object)  # PresetOption

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cards: list[PresetCardWidget] = []
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.buttonClicked.connect(self._on_group_button_clicked)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(CARD_SPACING)
        self._columns = 0
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_options(self, options: list[PresetOption]) -> None:
        for card in self.cards:
            self.group.removeButton(card)
            self._grid.removeWidget(card)
            card.deleteLater()
        self.cards = []
        for option in options:
            card = PresetCardWidget(option, self)
            self.cards.append(card)
            self.group.addButton(card)
        self._columns = 0
        self._arrange(self.width())

    def set_checked(self, key: str | None) -> None:
        """Check the card of preset ``key``; none when no card has that key."""
        self.group.setExclusive(False)  # an exclusive group cannot uncheck its last checked card
        for card in self.cards:
            card.setChecked(card.option.key == key)
        self.group.setExclusive(True)

    def columns(self) -> int:
        return self._columns

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange(event.size().width())

    def _arrange(self, width: int) -> None:
        """Put the cards in as many equal columns as fit ``width``; fix the height the rows need."""
        if not self.cards:
            self.setFixedHeight(0)
            return
        columns = max(1, min(len(self.cards), (width + CARD_SPACING) // (CARD_MIN_WIDTH + CARD_SPACING)))
        if columns != self._columns:
            self._columns = columns
            for card in self.cards:
                self._grid.removeWidget(card)
            for index, card in enumerate(self.cards):
                self._grid.addWidget(card, index // columns, index % columns)
            for column in range(self._grid.columnCount()):
                self._grid.setColumnStretch(column, 1 if column < columns else 0)
        card_width = max(1, (width - CARD_SPACING * (columns - 1)) // columns)
        rows = [self.cards[i : i + columns] for i in range(0, len(self.cards), columns)]
        heights = [max(card.heightForWidth(card_width) for card in row) for row in rows]
        for row, height in zip(rows, heights, strict=True):
            for card in row:
                card.setFixedHeight(height)
        self.setFixedHeight(sum(heights) + CARD_SPACING * (len(rows) - 1))

    def _on_group_button_clicked(self, card: PresetCardWidget) -> None:
        self.preset_chosen.emit(card.option)
