"""The loss chart: pyqtgraph set up for 100k points, float64 x, throttled redraws, log scale."""

from __future__ import annotations

import numpy as np

from chroma_studio.gui.run_model import LossSeries
from chroma_studio.gui.widgets.loss_chart import REDRAW_MS, LossChartWidget


def _series(n: int) -> LossSeries:
    series = LossSeries()
    rng = np.random.default_rng(0)
    series.extend(np.arange(1, n + 1), 0.5 + 0.1 * rng.random(n))
    return series


def test_chart_draws_100k_points_with_peak_downsampling_and_clip_to_view(qtbot):
    chart = LossChartWidget()
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    qtbot.waitExposed(chart)
    with qtbot.waitSignal(chart.plot.getViewBox().sigRangeChanged, timeout=5000):
        chart.set_series(_series(100_000))  # the view takes the curve's range when it next paints
    assert chart.point_count() == 100_000
    item = chart.plot.getPlotItem()
    assert item.ctrl.downsampleCheck.isChecked() or item.ctrl.autoDownsampleCheck.isChecked()
    assert item.ctrl.peakRadio.isChecked()
    assert item.ctrl.clipToViewCheck.isChecked()
    x, _y = chart.raw_curve.getOriginalDataset()
    assert x.dtype == np.float64 and len(x) == 100_000
    # with the view's range known, only a few points per pixel column are drawn
    assert len(chart.raw_curve.getData()[0]) < 10_000
    assert chart.grab().width() > 0


def test_new_points_redraw_at_most_ten_times_a_second(qtbot):
    chart = LossChartWidget()
    qtbot.addWidget(chart)
    series = LossSeries()
    chart.set_series(series)
    before = chart.redraw_count
    for step in range(1, 2001):  # a burst of steps, far faster than the redraw rate
        series.append(step, 1.0)
        chart.mark_dirty()
    assert chart.redraw_count == before  # nothing drawn synchronously
    with qtbot.waitSignal(chart.redrawn, timeout=2000):
        pass
    with qtbot.waitSignal(chart.redrawn, timeout=3 * REDRAW_MS, raising=False) as again:
        pass
    assert not again.signal_triggered and chart.redraw_count - before == 1  # the whole burst drawn once
    x, _ = chart.smooth_curve.getOriginalDataset()
    assert len(x) == 2000


def test_log_scale_and_empty_state(qtbot):
    chart = LossChartWidget()
    qtbot.addWidget(chart)
    chart.show()
    chart.set_series(LossSeries())
    assert chart.empty_label.isVisible() and not chart.plot.isVisible()
    chart.set_series(_series(10))
    assert chart.plot.isVisible()
    with qtbot.waitSignal(chart.log_scale_changed):
        chart.log_check.click()
    assert chart.plot.getPlotItem().ctrl.logYCheck.isChecked()
