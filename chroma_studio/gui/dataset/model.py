"""``DatasetModel``: the images of a dataset as a Qt list model, with their captions and problems.

One row per image (``DatasetItem``). Views read custom roles (``DatasetRole``); thumbnails are
not part of the model: the grid's delegate asks the thumbnail loader for the rows it paints.
Problems are computed per row on first use and cached until a caption, the trigger word or the
resolution changes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from enum import IntEnum
from pathlib import Path

from PySide6.QtCore import QAbstractListModel, QByteArray, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt

from chroma_studio.gui.dataset.items import (
    DatasetItem,
    DatasetStats,
    compute_stats,
    problem_kinds,
    problem_messages,
)

Index = QModelIndex | QPersistentModelIndex
_USER = int(Qt.ItemDataRole.UserRole)
TOOLTIP_CAPTION_CHARS = 300


class DatasetRole(IntEnum):
    PATH = _USER + 1  # str: the image file
    CAPTION = _USER + 2  # str: the caption text ("" when there is none or it cannot be read)
    HAS_CAPTION = _USER + 3  # bool: a readable, non-empty caption
    PROBLEMS = _USER + 4  # tuple[str, ...]: problem kind keys, most serious first
    SIZE = _USER + 5  # QSize: the image's size upright (empty when unreadable)
    BUCKET = _USER + 6  # QSize: the training shape at the current resolution (empty when unknown)
    CAPTION_PATH = _USER + 7  # str: the caption file (it may not exist)
    CAPTION_ERROR = _USER + 8  # str: why the caption cannot be read ("" when it can)
    ITEM = _USER + 9  # DatasetItem


class DatasetModel(QAbstractListModel):
    """The rows at a training ``resolution``: the project's, which the owner passes on when it changes."""

    def __init__(self, resolution: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._items: list[DatasetItem] = []
        self._rows_by_path: dict[Path, int] = {}
        self._rows_by_caption: dict[Path, list[int]] = {}
        self._kinds: list[tuple[str, ...] | None] = []
        self._resolution = int(resolution)
        self._trigger_word = ""

    # -- Qt model interface --------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def roleNames(self) -> dict[int, QByteArray]:
        names = super().roleNames()
        names.update({int(role): QByteArray(role.name.lower().encode()) for role in DatasetRole})
        return names

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(index.row())
        if role == DatasetRole.PATH:
            return str(item.path)
        if role == DatasetRole.CAPTION:
            return item.caption or ""
        if role == DatasetRole.HAS_CAPTION:
            return item.has_caption and not item.caption_error
        if role == DatasetRole.PROBLEMS:
            return self.problems(index.row())
        if role == DatasetRole.SIZE:
            return QSize(item.width, item.height)
        if role == DatasetRole.BUCKET:
            bucket = item.bucket(self._resolution)
            return QSize(*bucket) if bucket else QSize()
        if role == DatasetRole.CAPTION_PATH:
            return str(item.caption_path)
        if role == DatasetRole.CAPTION_ERROR:
            return item.caption_error
        if role == DatasetRole.ITEM:
            return item
        return None

    # -- contents --------------------------------------------------------------------------------
    def set_items(self, items: Sequence[DatasetItem]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self._rows_by_path = {item.path: row for row, item in enumerate(self._items)}
        self._rows_by_caption = {}
        for row, item in enumerate(self._items):
            self._rows_by_caption.setdefault(item.caption_path, []).append(row)
        self._kinds = [None] * len(self._items)
        self.endResetModel()

    def clear(self) -> None:
        self.set_items([])

    def items(self) -> list[DatasetItem]:
        return list(self._items)

    def item(self, row: int) -> DatasetItem:
        return self._items[row]

    def row_for_path(self, path: str | Path) -> int:
        """The row of the image at ``path``; -1 when it is not in the model."""
        return self._rows_by_path.get(Path(path), -1)

    def rows_for_caption(self, caption_path: str | Path) -> list[int]:
        return list(self._rows_by_caption.get(Path(caption_path), ()))

    def set_caption(self, caption_path: str | Path, text: str | None, error: str = "") -> None:
        """Record what the caption file now says (None: it does not exist; ``error``: unreadable)."""
        rows = self.rows_for_caption(caption_path)
        for row in rows:
            item = self._items[row]
            item.caption, item.caption_error = text, error
            self._kinds[row] = None
        for row in rows:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def add_image_findings(self, problems: dict[Path, dict[str, str]]) -> None:
        """Merge problems found by the image check (path -> {kind: message})."""
        changed = False
        for path, kinds in problems.items():
            row = self._rows_by_path.get(path)
            if row is not None:
                self._items[row].image_problems.update(kinds)
                self._kinds[row] = None
                changed = True
        if changed:
            self._all_changed()

    # -- settings that change every row's problems ------------------------------------------
    def resolution(self) -> int:
        return self._resolution

    def set_resolution(self, resolution: int) -> None:
        if resolution != self._resolution:
            self._resolution = int(resolution)
            self._all_changed()

    def trigger_word(self) -> str:
        return self._trigger_word

    def set_trigger_word(self, word: str) -> None:
        word = word.strip()
        if word != self._trigger_word:
            self._trigger_word = word
            self._all_changed()

    # -- derived ---------------------------------------------------------------------------------
    def problems(self, row: int) -> tuple[str, ...]:
        kinds = self._kinds[row]
        if kinds is None:
            kinds = problem_kinds(self._items[row], self._resolution, self._trigger_word)
            self._kinds[row] = kinds
        return kinds

    def stats(self) -> DatasetStats:
        kinds = [self.problems(row) for row in range(len(self._items))]
        return compute_stats(self._items, kinds, self._resolution, self._trigger_word)

    def rows_with_problem(self, kind: str) -> list[int]:
        return [row for row in range(len(self._items)) if kind in self.problems(row)]

    def caption_paths(self, rows: Iterable[int]) -> list[Path]:
        """The caption files of ``rows``, in row order, each once, leaving out images that cannot be read."""
        paths = (self._items[row].caption_path for row in sorted(set(rows)) if self._items[row].usable)
        return list(dict.fromkeys(paths))

    def _all_changed(self) -> None:
        self._kinds = [None] * len(self._items)
        if self._items:
            self.dataChanged.emit(self.index(0), self.index(len(self._items) - 1))

    def _tooltip(self, row: int) -> str:
        item = self._items[row]
        lines = [f"<b>{html.escape(item.path.name)}</b>"]
        if item.usable:
            bucket = item.bucket(self._resolution)
            shape = f" · trains as {bucket[0]}×{bucket[1]}" if bucket else ""
            if item.caption_error:
                shape = " · left out of training until its caption can be read"
            elif not item.trains_at(self._resolution):
                shape = " · left out of training: too small"
            lines.append(f"{item.width}×{item.height}{shape}")
        else:
            lines.append("Left out of training")
        if item.caption:
            caption = item.caption[:TOOLTIP_CAPTION_CHARS] + ("…" if len(item.caption) > TOOLTIP_CAPTION_CHARS else "")
            lines.append(f"<i>{html.escape(caption)}</i>")
        messages = problem_messages(item, self.problems(row), self._resolution, self._trigger_word)
        lines += [f"⚠ {html.escape(message)}" for message in messages]
        return "<br>".join(lines)
