"""The live loss chart: raw loss and its running average, smooth at 100k points.

pyqtgraph with peak downsampling and clip-to-view draws only what fits the pixels; x is float64
(steps); new points only mark the chart dirty and a timer redraws at most ten times a second, so
a fast run never floods the event loop.
"""

from __future__ import annotations

import logging

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from chroma_studio.gui.run_model import LossSeries

logger = logging.getLogger(__name__)

REDRAW_MS = 100  # at most ~10 redraws per second
RAW_COLOR = QColor(120, 144, 200, 110)
SMOOTH_COLOR = QColor(236, 112, 44)


class LossChartWidget(QWidget):
    """Plots a ``LossSeries``; call ``mark_dirty()`` when it grows."""

    log_scale_changed = Signal(bool)
    redrawn = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: LossSeries | None = None
        self._dirty = False
        self.redraw_count = 0

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("lossPlot")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        for name in ("bottom", "left"):
            # major ticks and grid lines only: the minor grid cost ~4x the rest of a repaint
            self.plot.getAxis(name).setStyle(maxTickLevel=0)
        item = self.plot.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.raw_curve = self.plot.plot(name="loss", pen=pg.mkPen(RAW_COLOR, width=1), skipFiniteCheck=True)
        self.smooth_curve = self.plot.plot(name="average", pen=pg.mkPen(SMOOTH_COLOR, width=2.5), skipFiniteCheck=True)
        self.plot.getViewBox().setMouseMode(pg.ViewBox.RectMode)

        self.empty_label = QLabel("The loss curve appears here when training starts.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setObjectName("hintLabel")

        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("Show the loss on a logarithmic axis.")
        self.log_check.toggled.connect(self._on_log_check_toggled)
        self.raw_check = QCheckBox("Raw loss")
        self.raw_check.setChecked(True)
        self.raw_check.setToolTip("Show every step's loss as well as the running average (orange).")
        self.raw_check.toggled.connect(self.raw_curve.setVisible)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Show the whole curve again after zooming (drag a box to zoom, scroll to zoom).")
        self.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.legend = QLabel(
            f"<span style='color:{SMOOTH_COLOR.name()}'>━</span> average &nbsp; "
            f"<span style='color:{RAW_COLOR.name()}'>━</span> loss per step"
        )

        tools = QHBoxLayout()
        tools.addWidget(self.legend)
        tools.addStretch(1)
        tools.addWidget(self.raw_check)
        tools.addWidget(self.log_check)
        tools.addWidget(self.fit_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.empty_label)
        self.plot.hide()

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.apply_palette()

    # -- data ------------------------------------------------------------------------------
    def set_series(self, series: LossSeries) -> None:
        self.series = series
        self.redraw()

    def mark_dirty(self) -> None:
        """New points arrived; draw them at the next tick (at most every REDRAW_MS)."""
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def point_count(self) -> int:
        return 0 if self.series is None else len(self.series)

    def redraw(self) -> None:
        self._dirty = False
        self.redraw_count += 1
        series = self.series
        if series is None or len(series) == 0:
            self.raw_curve.setData([], [])
            self.smooth_curve.setData([], [])
            self.plot.hide()
            self.empty_label.show()
            return
        self.empty_label.hide()
        self.plot.show()
        steps = series.steps
        self.raw_curve.setData(steps, series.loss)
        self.smooth_curve.setData(steps, series.smoothed)
        self.redrawn.emit()

    def _on_timer_timeout(self) -> None:
        if self._dirty:
            self.redraw()
        else:
            self._timer.stop()  # idle until the next point

    # -- view ------------------------------------------------------------------------------
    def set_log_scale(self, enabled: bool) -> None:
        self.log_check.setChecked(enabled)

    def _on_log_check_toggled(self, enabled: bool) -> None:
        self.plot.setLogMode(x=False, y=enabled)
        self.plot.enableAutoRange()
        self.log_scale_changed.emit(enabled)

    def _on_fit_button_clicked(self) -> None:
        self.plot.enableAutoRange()

    def apply_palette(self) -> None:
        """Follow the application palette (light or dark)."""
        palette = self.palette()
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        text = palette.color(QPalette.ColorRole.Text)
        for name in ("bottom", "left"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))

    def changeEvent(self, event) -> None:
        if event.type() == event.Type.PaletteChange:
            self.apply_palette()
        super().changeEvent(event)
