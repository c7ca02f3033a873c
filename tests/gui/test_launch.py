"""The window opens without loading the ML stack: torch and diffusers wait until training starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QSettings, QTimer
    import chroma_studio.cli
    chroma_studio.cli.build_parser()  # what `chroma-studio` does before it opens the window
    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.main_window import MainWindow
    from chroma_studio.gui.session import AppSettings

    app = create_application([sys.argv[0]])
    window = MainWindow(AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)))
    window.show()

    def report():
        if window.detect_worker is not None:
            window.detect_worker.wait()  # the machine detection ran too
        app.processEvents()
        heavy = ("torch", "diffusers", "transformers", "peft", "optimum", "safetensors")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        engine = sorted(m for m in sys.modules if m.startswith("chroma_studio.training"))
        print(json.dumps({"shown": window.isVisible(), "heavy": loaded[:10], "engine": engine}))
        window.close()
        app.quit()

    QTimer.singleShot(200, report)
    app.exec()
    """
)


def test_launching_the_app_does_not_import_torch(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "settings.ini")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shown"]
    assert report["heavy"] == [], f"loaded at launch: {report['heavy']}"
    assert report["engine"] == [], f"engine modules loaded at launch: {report['engine']}"
