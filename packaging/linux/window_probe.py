"""Open Chroma Studio's main window offscreen through its normal entry point, screenshot it, quit.

Run with the installed environment's Python: ``python window_probe.py OUT.png [DELAY_MS]``.
It wraps ``QApplication.exec`` so that, once the app's event loop has run for DELAY_MS, the
largest visible top-level window is grabbed to OUT.png; then the app is asked to quit. Prints
one ``WINDOW_PROBE {json}`` line. Exit 0: a window was shown; 3: none; 4: no GUI in this build.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

out = sys.argv[1]
delay_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
original_exec = QApplication.exec


def probe() -> None:
    app = QApplication.instance()
    windows = [w for w in app.topLevelWidgets() if w.isVisible() and w.width() > 1]
    report: dict = {"visible_windows": len(windows)}
    if windows:
        main = max(windows, key=lambda w: w.width() * w.height())
        saved = main.grab().save(out)
        report.update(title=main.windowTitle(), size=[main.width(), main.height()], class_=type(main).__name__)
        report.update(screenshot=out if saved else None)
    print("WINDOW_PROBE " + json.dumps(report), flush=True)
    app.exit(0 if windows else 3)


def exec_with_probe(*args):
    QTimer.singleShot(delay_ms, probe)
    return original_exec(*args)


QApplication.exec = staticmethod(exec_with_probe)

try:
    from chroma_studio.gui import app as _gui_app  # noqa: F401
except ModuleNotFoundError as exc:
    print("WINDOW_PROBE " + json.dumps({"missing": str(exc)}), flush=True)
    sys.exit(4)

from chroma_studio.cli import main  # noqa: E402

sys.exit(main([]))
