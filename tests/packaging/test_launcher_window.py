"""The setup window end to end with a fake command runner: success starts the app, failure offers Retry."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from chroma_studio_launcher.bundle import Bundle
from chroma_studio_launcher.decide import TORCH_VERSION, Hardware, Plan, decide
from chroma_studio_launcher.install import DEVICE_CHECK_MARKER, Work
from chroma_studio_launcher.layout import Layout
from chroma_studio_launcher.window import SetupWindow
from PySide6.QtGui import QGuiApplication


def fake_runner(fail_on: str | None = None):
    def run(argv, env, on_line, cancel, timeout):
        if fail_on and fail_on in argv:
            on_line("error: Failed to fetch: connection refused")
            return 2
        if argv[1] == "-c":
            on_line(DEVICE_CHECK_MARKER + " " + json.dumps({"torch": f"{TORCH_VERSION}+cpu", "sum": 4.0}))
        return 0

    return run


def make_window(qtbot, tmp_path, runner, ready: list):
    hardware = Hardware("linux", "x86_64")

    def prepare(choice):
        return decide(hardware, override=choice), Work.INSTALL

    bundle = Bundle(tmp_path, tmp_path / "uv", tmp_path / "chroma_studio-0.1.0-py3-none-any.whl", "0.1.0")
    kwargs = {"layout": Layout(tmp_path / "home", "linux"), "bundle": bundle, "base_env": {}, "runner": runner}
    window = SetupWindow(prepare, ("cu130", "cpu"), kwargs, ready.append, lambda line: None, str(tmp_path))
    qtbot.addWidget(window)
    window.show()
    return window


def test_successful_setup_starts_the_app(qtbot, tmp_path):
    ready: list = []
    window = make_window(qtbot, tmp_path, fake_runner(), ready)
    assert isinstance(window._plan, Plan) and window._plan.backend == "cpu"
    window.grab().save(str(tmp_path / "setup-window.png"))
    with qtbot.waitSignal(window.setup_succeeded, timeout=10000):
        window._install.click()
    assert [state.backend for state in ready] == ["cpu"]
    assert "PyTorch 2.13.0+cpu works on CPU." in window.log_text()


def test_failure_offers_retry_and_a_copyable_log(qtbot, tmp_path):
    ready: list = []
    window = make_window(qtbot, tmp_path, fake_runner(fail_on=f"torch=={TORCH_VERSION}"), ready)
    window._install.click()
    qtbot.waitUntil(lambda: window._install.text() == "Retry" and not window.running, timeout=10000)
    assert not ready
    assert "Downloading PyTorch failed" in window._status.text()
    window._copy.click()
    assert "connection refused" in QGuiApplication.clipboard().text()


def test_choosing_another_backend_changes_the_plan(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path, fake_runner(), [])
    window._backend.setCurrentIndex(window._backend.findData("cu130"))
    assert window._plan.backend == "cu130"
    assert "Chosen by you" in window._reason.text()
