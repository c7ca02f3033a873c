"""``BulkCaptionDialog``: set up one caption operation for many captions and preview it before applying.

The preview lists each caption that would change, before and after; it follows the settings as
they are typed. Captions that cannot be read are listed as skipped and are never written.
Nothing is written here: the page applies ``preview()`` through the caption history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from chroma_studio.dataset import (
    CaptionOperation,
    CaptionPreview,
    OperationError,
    add_prefix,
    add_suffix,
    add_trigger_word,
    find_replace,
    normalise_whitespace,
    preview_operation,
    remove_trigger_word,
)

log = logging.getLogger(__name__)

OPERATIONS = {
    "add-trigger": "Add trigger word",
    "remove-trigger": "Remove trigger word",
    "prefix-suffix": "Add text before or after",
    "find-replace": "Find and replace",
    "whitespace": "Tidy spaces",
}
PREVIEW_DELAY_MS = 200
CONTEXT_CHARS = 24  # text shown before the first change in a preview row
Index = QModelIndex | QPersistentModelIndex


def _first_difference(before: str, after: str) -> int:
    return next(
        (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after))
    )


class _PreviewTableModel(QAbstractTableModel):
    HEADERS = ("Caption file", "Before", "After")

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[tuple[str, str, str]] = []
        self._starts: list[int] = []

    def set_preview(self, preview: CaptionPreview | None) -> None:
        self.beginResetModel()
        self._rows = [] if preview is None else [(c.path.name, c.before, c.after) for c in preview.changes]
        self._rows += [] if preview is None else [(e.path.name, "(cannot be read)", e.reason) for e in preview.skipped]
        self._starts = [_first_difference(before, after) for _, before, after in self._rows]
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if index.isValid() and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = self._rows[index.row()][index.column()]
            if role == Qt.ItemDataRole.ToolTipRole:
                return text
            if index.column() > 0:  # start shortly before the first change, so it is in view
                start = self._starts[index.row()]
                text = "…" + text[start - CONTEXT_CHARS :] if start > CONTEXT_CHARS else text
            return text.replace("\n", " ⏎ ")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None


class BulkCaptionDialog(QDialog):
    def __init__(
        self, kind: str, caption_paths: Sequence[Path], trigger_word: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        if kind not in OPERATIONS:
            raise ValueError(f"unknown caption operation {kind!r}; choose one of {', '.join(OPERATIONS)}.")
        self.kind = kind
        self.caption_paths = list(caption_paths)
        self._preview: CaptionPreview | None = None
        self.setWindowTitle(f"{OPERATIONS[kind]} — {len(self.caption_paths)} captions")
        self.resize(760, 480)
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.refresh_preview)
        self._build(trigger_word)
        self.refresh_preview()

    # -- settings ---------------------------------------------------------------------------------
    def _build(self, trigger_word: str) -> None:
        form = QFormLayout()
        self.word = QLineEdit(trigger_word, placeholderText="the trigger word, like sks")
        self.position = QComboBox()
        self.text = QLineEdit(placeholderText="include the separator, like 'photo of sks, '")
        self.find = QLineEdit(placeholderText="the text to look for")
        self.replace = QLineEdit(placeholderText="what to put instead (empty removes it)")
        self.regex = QCheckBox("Regular expression (\\1 in the replacement for a group)")
        self.ignore_case = QCheckBox("Ignore upper/lower case")
        if self.kind == "add-trigger":
            self.position.addItem("At the start", "start")
            self.position.addItem("At the end", "end")
            form.addRow("Trigger word", self.word)
            form.addRow("Where", self.position)
        elif self.kind == "remove-trigger":
            form.addRow("Trigger word", self.word)
            form.addRow("", self.ignore_case)
        elif self.kind == "prefix-suffix":
            self.position.addItem("Before the caption", "prefix")
            self.position.addItem("After the caption", "suffix")
            form.addRow("Text", self.text)
            form.addRow("Where", self.position)
        elif self.kind == "find-replace":
            form.addRow("Find", self.find)
            form.addRow("Replace with", self.replace)
            form.addRow("", self.regex)
            form.addRow("", self.ignore_case)
        else:
            form.addRow(QLabel("Collapses runs of spaces, removes spaces before punctuation and blank lines."))
        for edit in (self.word, self.text, self.find, self.replace):
            edit.textChanged.connect(self._on_setting_changed)
        self.position.currentIndexChanged.connect(self._on_setting_changed)
        self.regex.toggled.connect(self._on_setting_changed)
        self.ignore_case.toggled.connect(self._on_setting_changed)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.table_model = _PreviewTableModel()
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = self.buttons.addButton("Apply", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.buttons)

    def _on_setting_changed(self) -> None:
        self._timer.start()

    def operation(self) -> CaptionOperation:
        """The operation as set up now. Raises OperationError when a setting is unusable."""
        if self.kind == "add-trigger":
            return add_trigger_word(self.word.text(), self.position.currentData())
        if self.kind == "remove-trigger":
            return remove_trigger_word(self.word.text(), self.ignore_case.isChecked())
        if self.kind == "prefix-suffix":
            make = add_prefix if self.position.currentData() == "prefix" else add_suffix
            return make(self.text.text())
        if self.kind == "find-replace":
            return find_replace(
                self.find.text(), self.replace.text(), self.regex.isChecked(), self.ignore_case.isChecked()
            )
        return normalise_whitespace()

    # -- preview -----------------------------------------------------------------------------------
    def preview(self) -> CaptionPreview | None:
        """The changes the operation makes, as of the last refresh; None when the settings are unusable."""
        if self._timer.isActive():
            self.refresh_preview()
        return self._preview

    def refresh_preview(self) -> None:
        self._timer.stop()
        try:
            self._preview = preview_operation(self.caption_paths, self.operation())
        except OperationError as exc:
            self._preview = None
            self.summary.setText(f"<span style='color:#c62828'>{str(exc)[:1].upper()}{str(exc)[1:]}</span>")
        else:
            self.summary.setText(self._describe(self._preview))
        self.table_model.set_preview(self._preview)
        self.apply_button.setEnabled(bool(self._preview and self._preview.changes))

    @staticmethod
    def _describe(preview: CaptionPreview) -> str:
        parts = [f"<b>{len(preview.changes)} caption{'s' if len(preview.changes) != 1 else ''} will change</b>"]
        if preview.unchanged:
            parts.append(f"{preview.unchanged} already fine")
        if preview.skipped:
            parts.append(f"{len(preview.skipped)} skipped because they cannot be read (left untouched)")
        return " · ".join(parts) + ". You can undo this afterwards."
