"""The thumbnail grid: a ``QListView`` in icon mode with uniform cells, and the delegate that paints them.

The delegate asks the ``ThumbnailLoader`` for each cell it paints, so only the images on screen
are decoded; a placeholder stands in until the thumbnail arrives. Problem badges are drawn over
the picture. Folders and images dropped on the grid arrive through its viewport.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from chroma_studio.gui.dataset.items import KINDS_BY_KEY
from chroma_studio.gui.dataset.model import DatasetModel, DatasetRole
from chroma_studio.gui.dataset.thumbnail_loader import ThumbnailLoader
from chroma_studio.gui.widgets.drop_zone import dropped_paths

Index = QModelIndex | QPersistentModelIndex
THUMB_BOX = 148  # the square a thumbnail is fitted into, in device-independent pixels
PADDING = 6
MAX_BADGES = 2
SCROLL_SETTLE_MS = 150
BADGE_COLOURS = {"error": QColor("#c62828"), "warning": QColor("#b26a00"), "notice": QColor(40, 40, 40, 170)}


class ThumbnailDelegate(QStyledItemDelegate):
    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader

    def cell_size(self, option: QStyleOptionViewItem | None = None) -> QSize:
        text_height = (option.fontMetrics.height() if option is not None else 16) + 4
        return QSize(THUMB_BOX + 2 * PADDING, THUMB_BOX + 2 * PADDING + text_height)

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return self.cell_size(option)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        cell = QRect(option.rect).adjusted(1, 1, -1, -1)
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            highlight = palette.color(QPalette.ColorRole.Highlight)
            fill = QColor(highlight)
            fill.setAlpha(60)
            painter.setPen(highlight)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(cell), 8, 8)
        box = QRect(cell.left() + PADDING - 1, cell.top() + PADDING - 1, THUMB_BOX, THUMB_BOX)
        text_rect = QRect(cell.left() + 2, box.bottom() + 4, cell.width() - 4, cell.bottom() - box.bottom() - 4)
        name = option.fontMetrics.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name)
        picture = self._paint_thumbnail(painter, box, str(index.data(DatasetRole.PATH)), palette)
        self._paint_badges(painter, picture, index.data(DatasetRole.PROBLEMS) or ())
        painter.restore()

    def _paint_thumbnail(self, painter: QPainter, box: QRect, path: str, palette: QPalette) -> QRect:
        """Draw the thumbnail (or a placeholder) fitted into ``box``; returns where the picture is."""
        pixmap = self.loader.pixmap(path)
        if pixmap is None or pixmap.isNull():
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.AlternateBase))
            painter.drawRoundedRect(QRectF(box), 6, 6)
            if self.loader.failure(path):
                painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "Cannot show\nthis image")
            return box
        size = pixmap.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(box.center())
        painter.drawPixmap(target, pixmap)
        return target

    def _paint_badges(self, painter: QPainter, box: QRect, kinds: tuple[str, ...]) -> None:
        if not kinds:
            return
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        labels = [(KINDS_BY_KEY[k].badge, KINDS_BY_KEY[k].severity) for k in kinds[:MAX_BADGES]]
        if len(kinds) > MAX_BADGES:
            labels.append((f"+{len(kinds) - MAX_BADGES} more", labels[-1][1]))
        top = box.top() + 4
        for text, severity in labels:
            width = min(metrics.horizontalAdvance(text) + 10, max(box.width() - 8, 24))
            pill = QRect(box.left() + 4, top, width, metrics.height() + 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(BADGE_COLOURS.get(severity, BADGE_COLOURS["warning"]))
            painter.drawRoundedRect(QRectF(pill), pill.height() / 2, pill.height() / 2)
            painter.setPen(QColor("white"))
            painter.drawText(
                pill, Qt.AlignmentFlag.AlignCenter, metrics.elidedText(text, Qt.TextElideMode.ElideRight, width - 6)
            )
            top = pill.bottom() + 3


class ThumbnailGridWidget(QListView):
    """A grid of thumbnails over a ``DatasetModel`` (or a filter of one); emits ``paths_dropped``."""

    paths_dropped = Signal(list)  # list[str]: folders and image files

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.delegate = ThumbnailDelegate(loader, self)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(300)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setSpacing(4)
        self.setGridSize(self.delegate.cell_size() + QSize(8, 8))
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setDragDropMode(QListView.DragDropMode.NoDragDrop)
        self.viewport().setAcceptDrops(True)
        self.empty_text = ""
        self._accepting = False
        self._settle = QTimer(self, singleShot=True, interval=SCROLL_SETTLE_MS)
        self._settle.timeout.connect(self._on_settle_timeout)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll_bar_value_changed)
        loader.thumbnail_changed.connect(self._on_loader_thumbnail_changed)

    def _on_loader_thumbnail_changed(self, path: str) -> None:
        index = self._index_for_path(path)
        if index.isValid():
            self.update(index)

    def _on_scroll_bar_value_changed(self, _value: int) -> None:
        self._settle.start()

    def _on_settle_timeout(self) -> None:
        self.loader.forget_queued()  # what scrolled past is not worth decoding now
        self.viewport().update()

    def _index_for_path(self, path: str) -> QModelIndex:
        model = self.model()
        source = model.sourceModel() if isinstance(model, QSortFilterProxyModel) else model
        if not isinstance(source, DatasetModel):
            return QModelIndex()
        row = source.row_for_path(path)
        if row < 0:
            return QModelIndex()
        index = source.index(row)
        return model.mapFromSource(index) if isinstance(model, QSortFilterProxyModel) else index

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if self.empty_text and model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)

    # -- drops from the file manager (they arrive through the viewport) ------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._accepting = bool(dropped_paths(event.mimeData()))
        if self._accepting:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._accepting:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)
        else:
            event.ignore()
