"""``DatasetFilterModel``: the rows of a ``DatasetModel`` that have a problem or match some text.

The filter is applied when it is set (or the rows are replaced), not on every edit: an image
listed under "Images without a caption" stays in view while its caption is being written, and
its badge updates in place. ``refresh()`` applies the filter again.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSortFilterProxyModel

from chroma_studio.gui.dataset.model import DatasetModel

ANY_PROBLEM = "any"


class DatasetFilterModel(QSortFilterProxyModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setDynamicSortFilter(False)
        self._problem = ""
        self._text = ""

    def problem_filter(self) -> str:
        return self._problem

    def set_problem_filter(self, kind: str) -> None:
        """Show only rows with problem ``kind``; ``ANY_PROBLEM`` for any problem, "" for all rows."""
        if kind != self._problem:
            self._problem = kind
            self.refresh()

    def text_filter(self) -> str:
        return self._text

    def set_text_filter(self, text: str) -> None:
        """Show only rows whose caption or file name contains ``text`` (ignoring case)."""
        text = text.strip().casefold()
        if text != self._text:
            self._text = text
            self.refresh()

    def refresh(self) -> None:
        """Apply the filter again to every row."""
        if hasattr(self, "endFilterChange"):  # Qt 6.10 and later
            self.beginFilterChange()
            self.endFilterChange()
        else:
            self.invalidateRowsFilter()

    def source_rows(self, proxy_rows: list[int]) -> list[int]:
        return [self.mapToSource(self.index(row, 0)).row() for row in proxy_rows]

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        model = self.sourceModel()
        if not isinstance(model, DatasetModel):
            return True
        if self._problem:
            kinds = model.problems(source_row)
            matches = bool(kinds) if self._problem == ANY_PROBLEM else self._problem in kinds
            if not matches:
                return False
        if self._text:
            item = model.item(source_row)
            if self._text not in (item.caption or "").casefold() and self._text not in item.path.name.casefold():
                return False
        return True
