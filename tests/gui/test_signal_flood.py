"""Regression: PySide6 6.12.0 on Python 3.11 aborted the interpreter after a few thousand
Python-side ``Signal.emit()`` calls (a leaked reference to ``True``). A live run emits one signal
per engine event and pyqtgraph emits internally, so the app must survive 100k emits. The check
runs in a subprocess: a crash fails this test instead of killing pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, Signal

    class Source(QObject):
        event_emitted = Signal(object)
        ticked = Signal()

    app = QCoreApplication(sys.argv)
    source = Source()
    received = []
    source.event_emitted.connect(received.append)
    source.ticked.connect(lambda: None)
    for i in range(100_000):
        source.event_emitted.emit(i)
        source.ticked.emit()
    assert len(received) == 100_000, len(received)
    print("ok", len(received))
    """
)


def test_100k_signal_emits_do_not_crash_the_interpreter():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-2000:]}"
    assert "ok 100000" in result.stdout
