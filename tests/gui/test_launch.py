"""The app's process never loads the ML stack: not to open the window, not while a run trains.

The engine runs in a process of its own (``chroma_studio.training.child``); the window only
needs the light modules that start it and read its events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support import TINY_DEMO, copy_demo_images

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
        if window.studio.detect_worker is not None:
            window.studio.detect_worker.wait()  # the machine detection ran too
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


TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QEventLoop, QSettings
    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary
    from chroma_studio.gui.main_window import MainWindow
    from chroma_studio.gui.session import AppSettings

    settings_file, photos, output = sys.argv[1:4]
    app = create_application([sys.argv[0]])
    settings = AppSettings(QSettings(settings_file, QSettings.Format.IniFormat))
    settings.output_folder = output
    window = MainWindow(settings, detector=None)
    window.set_machine_summary(MachineSummary(devices=(DeviceInfo("CPU", "cpu"),)))
    window.show()
    window.dataset_page.set_folders([photos])
    window.session.update(**json.loads(sys.argv[4]))
    loop = QEventLoop()
    window.controller.run_ended.connect(loop.quit)
    assert window.train_page.start()
    loop.exec()
    model = window.controller.model
    heavy = ("torch", "diffusers", "transformers", "peft", "optimum", "safetensors")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
    print(json.dumps({"status": model.status, "step": model.step, "samples": len(model.samples), "heavy": loaded[:10]}))
    window.close()
    """
)
LIGHT_ENGINE_MODULES = {
    "chroma_studio.training",
    "chroma_studio.protocol.control",
    "chroma_studio.protocol.events",
    "chroma_studio.protocol.remote",
}


def run_script(script: str, *args: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_launching_the_app_does_not_import_torch(tmp_path):
    report = run_script(SCRIPT, str(tmp_path / "settings.ini"))
    assert report["shown"]
    assert report["heavy"] == [], f"loaded at launch: {report['heavy']}"
    assert set(report["engine"]) <= LIGHT_ENGINE_MODULES, f"engine modules loaded at launch: {report['engine']}"


@pytest.mark.slow
def test_a_whole_training_run_leaves_the_apps_process_without_torch(tmp_path):
    photos = copy_demo_images(tmp_path / "photos")
    settings = {**TINY_DEMO, "max_train_steps": 3, "trigger_word": "sks"}
    report = run_script(
        TRAIN_SCRIPT, str(tmp_path / "settings.ini"), str(photos), str(tmp_path / "runs"), json.dumps(settings)
    )
    assert report["status"] == "finished" and report["step"] == 3
    assert report["samples"] >= 2  # rendered by the engine process, shown by the window
    assert report["heavy"] == [], f"loaded in the app's process: {report['heavy']}"
