"""Sample images as a grid: one row per prompt, one column per training step.

``SampleGridModel`` is a Qt table model over ``SampleImage`` records; thumbnails decode in a
thread pool (``QImageReader`` scaled), and the pixmap is made on the GUI thread when the image
comes back. ``GalleryWidget`` is the table view with a size slider; a click emits the sample.

The grid scrolls by pixels, so the step headers always move with their pictures; its right end is
where a whole step column starts at the left edge (a clipped header reads "ep 300"). It opens there,
with the newest step in view, and new steps keep it there (once scrolled back, it stays put).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QSlider, QTableView, QVBoxLayout, QWidget

from chroma_studio.gui.run_model import SampleImage

logger = logging.getLogger(__name__)

SAMPLE_ROLE = Qt.ItemDataRole.UserRole + 1


class _Decoded(QObject):
    decoded = Signal(str, int, QImage)  # path, size asked for, image


class _DecodeTask(QRunnable):
    def __init__(self, path: str, size: int, notifier: _Decoded) -> None:
        super().__init__()
        self.path, self.size, self.notifier = path, size, notifier

    def run(self) -> None:
        reader = QImageReader(self.path)
        reader.setAutoTransform(True)
        original = reader.size()
        if original.isValid():
            reader.setScaledSize(original.scaled(self.size, self.size, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if image.isNull():
            logger.warning("cannot read sample %s: %s", self.path, reader.errorString())
        self.notifier.decoded.emit(self.path, self.size, image)


class SampleGridModel(QAbstractTableModel):
    """Rows: prompts (by prompt index). Columns: steps. Cells: the sample image of that pair."""

    def __init__(self, parent: QObject | None = None, thumb_size: int = 128) -> None:
        super().__init__(parent)
        self.prompts: list[str] = []
        self.prompt_indices: list[int] = []
        self.steps: list[int] = []
        self.cells: dict[tuple[int, int], SampleImage] = {}  # (prompt_index, step) -> sample
        self.thumb_size = thumb_size
        self._pixmaps: dict[str, QPixmap] = {}
        self._pending: set[str] = set()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._notifier = _Decoded(self)
        self._notifier.decoded.connect(self._on_notifier_decoded)

    # -- content ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.beginResetModel()
        self.prompts, self.prompt_indices, self.steps = [], [], []
        self.cells.clear()
        self._pixmaps.clear()
        self.endResetModel()

    def add_sample(self, sample: SampleImage) -> None:
        if sample.prompt_index not in self.prompt_indices:
            row = len(self.prompt_indices)
            self.beginInsertRows(QModelIndex(), row, row)
            self.prompt_indices.append(sample.prompt_index)
            self.prompts.append(sample.prompt)
            self.endInsertRows()
        if sample.step not in self.steps:
            column = sum(1 for s in self.steps if s < sample.step)
            self.beginInsertColumns(QModelIndex(), column, column)
            self.steps.insert(column, sample.step)
            self.endInsertColumns()
        self.cells[(sample.prompt_index, sample.step)] = sample
        self._pixmaps.pop(sample.path, None)  # a re-rendered step replaces its image file
        index = self.index(self.prompt_indices.index(sample.prompt_index), self.steps.index(sample.step))
        self.dataChanged.emit(index, index)

    def set_samples(self, samples: list[SampleImage]) -> None:
        self.clear()
        for sample in samples:
            self.add_sample(sample)

    def sample_at(self, index: QModelIndex) -> SampleImage | None:
        if not index.isValid():
            return None
        return self.cells.get((self.prompt_indices[index.row()], self.steps[index.column()]))

    def set_thumb_size(self, size: int) -> None:
        if size != self.thumb_size:
            self.thumb_size = size
            self._pixmaps.clear()
            if self.rowCount() and self.columnCount():
                self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, self.columnCount() - 1))

    def wait_for_thumbnails(self, milliseconds: int = 5000) -> bool:
        return self.pool.waitForDone(milliseconds)

    # -- Qt model --------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.prompt_indices)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.steps)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        sample = self.sample_at(index)
        if sample is None:
            return None
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(sample.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"Step {sample.step}\n{sample.prompt}\n{sample.path}\nClick to enlarge."
        if role == SAMPLE_ROLE:
            return sample
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and section < len(self.steps):
            if role == Qt.ItemDataRole.DisplayRole:
                return f"Step {self.steps[section]}"
        elif orientation == Qt.Orientation.Vertical and section < len(self.prompts):
            prompt = self.prompts[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return prompt if len(prompt) <= 28 else prompt[:26] + "…"
            if role == Qt.ItemDataRole.ToolTipRole:
                return prompt
        return None

    def flags(self, index):
        if self.sample_at(index) is None:
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- thumbnails ------------------------------------------------------------------------
    def _pixmap(self, path: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(path)
        if pixmap is None and path not in self._pending and Path(path).is_file():
            self._pending.add(path)
            self.pool.start(_DecodeTask(path, self.thumb_size, self._notifier))
        return pixmap

    def _on_notifier_decoded(self, path: str, size: int, image: QImage) -> None:
        self._pending.discard(path)
        if size != self.thumb_size or image.isNull():
            return
        self._pixmaps[path] = QPixmap.fromImage(image)
        for (prompt_index, step), sample in self.cells.items():
            if sample.path == path:
                index = self.index(self.prompt_indices.index(prompt_index), self.steps.index(step))
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class _SampleGridView(QTableView):
    """A table view whose horizontal scrolling ends on a column edge, not on the last pixel."""

    def updateGeometries(self) -> None:
        super().updateGeometries()
        bar = self.horizontalScrollBar()
        if bar.maximum() > 0:  # the last pixel's position would cut the leftmost column in two
            bar.setMaximum(self._column_edge_from(bar.maximum()))

    def _column_edge_from(self, x: int) -> int:
        """The left edge of the first column that starts at or after ``x`` (content pixels)."""
        header = self.horizontalHeader()
        edges = (header.sectionPosition(header.logicalIndex(visual)) for visual in range(header.count()))
        return next((edge for edge in edges if edge >= x), x)


class GalleryWidget(QWidget):
    """The prompts x steps grid; click a picture to open it."""

    sample_activated = Signal(object)  # SampleImage

    def __init__(self, parent: QWidget | None = None, thumb_size: int = 128, show_slider: bool = True) -> None:
        super().__init__(parent)
        self.model = SampleGridModel(self, thumb_size)
        self.view = _SampleGridView()
        self.view.setObjectName("sampleGrid")
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setShowGrid(False)
        self.view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self._follow_newest = True  # keep the newest step in view while the grid is at its right end
        bar = self.view.horizontalScrollBar()
        bar.rangeChanged.connect(self._on_bar_range_changed)
        bar.valueChanged.connect(self._on_bar_value_changed)
        self.view.clicked.connect(self._on_view_clicked)
        self.view.activated.connect(self._on_view_clicked)
        self.empty = QLabel("Sample images appear here while training runs: one row per prompt, one column per step.")
        self.empty.setObjectName("hintLabel")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(64, 384)
        self.slider.setValue(thumb_size)
        self.slider.setToolTip("Picture size")
        self.slider.setMaximumWidth(200)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if show_slider:
            bar = QHBoxLayout()
            bar.addStretch(1)
            bar.addWidget(QLabel("Size"))
            bar.addWidget(self.slider)
            layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty, 1)
        self.model.modelReset.connect(self._on_model_model_reset)
        self.model.rowsInserted.connect(self._on_model_rows_inserted)
        self._apply_size(thumb_size)
        self._update_empty()

    def _on_model_model_reset(self) -> None:
        self._follow_newest = True
        self._update_empty()

    def _on_bar_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow_newest:
            self.view.horizontalScrollBar().setValue(maximum)

    def _on_bar_value_changed(self, value: int) -> None:
        self._follow_newest = value >= self.view.horizontalScrollBar().maximum()

    def _on_model_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        self._update_empty()

    def _update_empty(self) -> None:
        has = self.model.rowCount() > 0
        self.view.setVisible(has)
        self.empty.setVisible(not has)

    def add_sample(self, sample: SampleImage) -> None:
        self.model.add_sample(sample)  # a new step column moves the grid along if it is at its end

    def set_samples(self, samples: list[SampleImage]) -> None:
        self.model.set_samples(samples)
        self._update_empty()

    def _apply_size(self, size: int) -> None:
        self.model.set_thumb_size(size)
        self.view.setIconSize(QSize(size, size))
        self.view.horizontalHeader().setDefaultSectionSize(size + 12)
        self.view.verticalHeader().setDefaultSectionSize(size + 12)

    def _on_slider_value_changed(self, size: int) -> None:
        self._apply_size(size)

    def _on_view_clicked(self, index: QModelIndex) -> None:
        sample = self.model.sample_at(index)
        if sample is not None:
            self.sample_activated.emit(sample)
