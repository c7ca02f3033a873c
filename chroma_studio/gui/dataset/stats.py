"""``DatasetStatsWidget``: the dataset in figures: images, sizes, training shapes, caption coverage."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QFormLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from chroma_studio.gui.dataset.items import DatasetStats

MAX_BUCKET_ROWS = 6


class BucketBarsWidget(QWidget):
    """Horizontal bars: how many images train in each shape."""

    ROW_HEIGHT = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, int]] = []

    def set_buckets(self, buckets: dict[tuple[int, int], int]) -> None:
        rows = [(f"{w}×{h}", n) for (w, h), n in list(buckets.items())[:MAX_BUCKET_ROWS]]
        rest = list(buckets.values())[MAX_BUCKET_ROWS:]
        if rest:
            rows.append((f"{len(rest)} more", sum(rest)))
        self._rows = rows
        self.setToolTip("\n".join(f"{w}×{h}: {n} images" for (w, h), n in buckets.items()))
        self.updateGeometry()
        self.update()

    def rows(self) -> list[tuple[str, int]]:
        return list(self._rows)

    def sizeHint(self) -> QSize:
        return QSize(200, max(1, len(self._rows)) * self.ROW_HEIGHT)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self._rows:
            return
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        label_width = max(metrics.horizontalAdvance(label) for label, _ in self._rows) + 8
        count_width = metrics.horizontalAdvance("00000") + 6
        bar_space = max(10, self.width() - label_width - count_width)
        largest = max(n for _, n in self._rows)
        text = self.palette().color(QPalette.ColorRole.Text)
        bar = self.palette().color(QPalette.ColorRole.Highlight)
        for i, (label, count) in enumerate(self._rows):
            top = i * self.ROW_HEIGHT
            painter.setPen(text)
            painter.drawText(QRect(0, top, label_width, self.ROW_HEIGHT), Qt.AlignmentFlag.AlignVCenter, label)
            length = max(2, round(bar_space * count / largest))
            painter.fillRect(QRect(label_width, top + 4, length, self.ROW_HEIGHT - 8), bar)
            painter.drawText(
                QRect(label_width + length + 4, top, count_width, self.ROW_HEIGHT),
                Qt.AlignmentFlag.AlignVCenter,
                str(count),
            )


class DatasetStatsWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images = QLabel()
        self.images.setWordWrap(True)
        self.sizes = QLabel()
        self.sizes.setWordWrap(True)
        self.captions = QProgressBar()
        self.trigger = QProgressBar()
        for bar in (self.captions, self.trigger):
            bar.setMaximumHeight(18)
            bar.setTextVisible(True)
        self.buckets_label = QLabel()
        self.buckets = BucketBarsWidget()
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Images", self.images)
        form.addRow("Sizes", self.sizes)
        form.addRow("Captions", self.captions)
        form.addRow("Trigger word", self.trigger)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.buckets_label)
        layout.addWidget(self.buckets)
        self._stats = DatasetStats()
        self.set_stats(self._stats)

    def stats(self) -> DatasetStats:
        return self._stats

    def set_stats(self, stats: DatasetStats) -> None:
        self._stats = stats
        usable = stats.images - stats.unusable
        text = f"{stats.trainable:,}"
        if stats.per_epoch != stats.trainable:
            text += f" ({stats.per_epoch:,} per epoch with folder repeats)"
        left_out = []
        if stats.unusable:
            left_out.append(f"{stats.unusable:,} damaged file{'s' if stats.unusable != 1 else ''}")
        if stats.caption_unreadable:
            left_out.append(f"{stats.caption_unreadable:,} with an unreadable caption")
        if left_out:
            text += f" to train; left out: {' and '.join(left_out)}"
        self.images.setText(text)
        if stats.smallest and stats.median:
            self.sizes.setText(
                f"smallest {stats.smallest[0]}×{stats.smallest[1]}, median {stats.median[0]}×{stats.median[1]}"
            )
        else:
            self.sizes.setText("–")
        _set_bar(self.captions, stats.captioned, usable, "{value} of {total} have one")
        if stats.trigger_word:
            _set_bar(self.trigger, stats.with_trigger, usable, "in {value} of {total}")
        else:
            self.trigger.setRange(0, 1)
            self.trigger.setValue(0)
            self.trigger.setFormat("type one above")
        self.buckets_label.setText(f"Training shapes at {stats.resolution} px" if stats.buckets else "")
        self.buckets.set_buckets(stats.buckets)


def _set_bar(bar: QProgressBar, value: int, total: int, template: str) -> None:
    bar.setRange(0, max(1, total))
    bar.setValue(value)
    bar.setFormat(template.format(value=f"{value:,}", total=f"{total:,}"))
