"""Benchmark: how responsive the window stays; prints the figures as one JSON document.

    python tests/benchmarks/gui_latency.py [--steps 40] [--interval-ms 5]

- ``launch``: seconds from starting a fresh Python process to the main window shown and its event
  loop running (the same code path as ``chroma-studio`` with no arguments). Target: under 2 s.
- ``stalls``: a demo training runs (started with the Train button's code: the engine process,
  watched by the worker thread) while a timer on the GUI thread ticks every ``interval`` ms; a
  stall is how much later than due a tick fires. Reported over the whole run and, separately,
  over the training steps alone (after the model is loaded). Targets: p99 under 30 ms, max under
  100 ms. ``torch_in_app_process`` says whether the app's own process loaded torch (it should not).
- ``chart``: the loss chart's redraw (set the data and paint the widget) at 100k points, the
  whole curve in view and zoomed in.

Runs offscreen when there is no display.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LAUNCH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QSettings, QTimer
    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.main_window import MainWindow
    from chroma_studio.gui.session import AppSettings

    app = create_application([sys.argv[0]])
    window = MainWindow(AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)))
    window.show()

    def shown():
        print("SHOWN", time.time(), window.isVisible(), flush=True)
        if window.studio.detect_worker is not None:
            window.studio.detect_worker.wait()
        window.close()
        app.quit()

    QTimer.singleShot(0, shown)
    app.exec()
    """
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure_launch(runs: int, folder: Path) -> dict:
    times = []
    for i in range(runs):
        started = time.time()
        out = subprocess.run(
            [sys.executable, "-c", LAUNCH_SCRIPT, str(folder / f"launch{i}.ini")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ},
        )
        line = next((s for s in out.stdout.splitlines() if s.startswith("SHOWN")), None)
        if line is None:
            raise RuntimeError(f"the window did not open:\n{out.stderr[-2000:]}")
        times.append(float(line.split()[1]) - started)
    return {"runs": runs, "first_window_s": round(times[0], 3), "median_s": round(statistics.median(times), 3)}


def stall_figures(stalls: list[float]) -> dict:
    return {
        "ticks": len(stalls),
        "p50_ms": round(percentile(stalls, 50), 2),
        "p99_ms": round(percentile(stalls, 99), 2),
        "max_ms": round(max(stalls, default=0.0), 2),
    }


def measure_stalls(steps: int, interval_ms: int, folder: Path) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from chroma_studio.base.paths import resources_dir
    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary
    from chroma_studio.gui.main_window import MainWindow
    from chroma_studio.gui.session import AppSettings

    photos = folder / "photos"
    photos.mkdir()
    for source in sorted((resources_dir() / "demo").iterdir()):
        if source.suffix in (".jpg", ".txt"):
            shutil.copy(source, photos / source.name)
    settings = AppSettings(QSettings(str(folder / "stalls.ini"), QSettings.Format.IniFormat))
    settings.output_folder = str(folder / "runs")
    settings.cache_folder = str(folder / "cache")

    create_application([sys.argv[0]])
    window = MainWindow(settings, detector=None)
    window.set_machine_summary(MachineSummary(devices=(DeviceInfo("CPU", "cpu"),)))
    window.resize(1280, 820)
    window.show()
    window.dataset_page.set_folders([str(photos)])
    window.dataset_page.set_trigger_word("sks")
    window.session.update(
        model_flavour="demo",
        resolution=128,
        mixed_precision="no",
        lora_rank=4,
        max_train_steps=steps,
        checkpointing_steps=max(1, steps // 2),
        validation_steps=max(1, steps // 4),
        validation_num_inference_steps=2,
        validation_resolution=64,
    )
    window.show_page("train")

    ticks: list[tuple[float, bool]] = []  # (stall in ms, in the training loop)
    model = window.controller.model
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        ticks.append((max(0.0, (now - last[0]) * 1000 - interval_ms), model.step > 0))
        last[0] = now

    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    window.controller.run_ended.connect(loop.quit)
    started = time.perf_counter()
    if not window.train_page.start():
        raise RuntimeError("the run did not start")
    last[0] = time.perf_counter()
    timer.start()
    loop.exec()
    timer.stop()
    seconds = time.perf_counter() - started
    window.close()
    return {
        "torch_in_app_process": "torch" in sys.modules,
        "run_status": model.status,
        "steps": model.step,
        "run_seconds": round(seconds, 2),
        "interval_ms": interval_ms,
        "whole_run": stall_figures([s for s, _ in ticks]),
        "training_steps": stall_figures([s for s, training in ticks if training]),
    }


def measure_chart(points: int) -> dict:
    import numpy as np

    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.run_model import LossSeries
    from chroma_studio.gui.widgets.loss_chart import LossChartWidget

    create_application([sys.argv[0]])
    series = LossSeries()
    rng = np.random.default_rng(0)
    steps = np.arange(1, points + 1, dtype=np.float64)
    series.extend(steps, 0.3 + 0.2 * np.exp(-steps / points * 5) + 0.05 * rng.standard_normal(points))
    chart = LossChartWidget()
    chart.resize(1000, 500)
    chart.show()
    chart.set_series(series)
    chart.grab()

    def redraw_times(repeats: int = 15) -> list[float]:
        times = []
        for i in range(repeats):
            series.append(points + i + 1, 0.3)
            began = time.perf_counter()
            chart.redraw()
            chart.grab()  # paints the whole widget, as the screen would
            times.append((time.perf_counter() - began) * 1000)
        return times

    whole = redraw_times()
    chart.plot.getViewBox().setXRange(points * 0.4, points * 0.5, padding=0)
    zoomed = redraw_times()
    chart.log_check.setChecked(True)
    logged = redraw_times()
    return {
        "points": points,
        "redraw_median_ms": round(statistics.median(whole), 2),
        "redraw_max_ms": round(max(whole), 2),
        "zoomed_median_ms": round(statistics.median(zoomed), 2),
        "log_scale_median_ms": round(statistics.median(logged), 2),
        "drawn_points": len(chart.raw_curve.getData()[0]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps of the demo run")
    parser.add_argument("--interval-ms", type=int, default=5, help="GUI timer interval")
    parser.add_argument("--launch-runs", type=int, default=3)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chroma-studio-gui-latency-") as tmp:
        folder = Path(tmp)
        launch = measure_launch(args.launch_runs, folder)
        chart = measure_chart(args.points)
        stalls = measure_stalls(args.steps, args.interval_ms, folder)
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "launch": launch,
        "stalls": stalls,
        "chart": chart,
        "targets": {"stall_p99_ms": 30, "stall_max_ms": 100, "launch_s": 2.0},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
