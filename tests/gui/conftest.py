"""GUI test fixtures: isolated settings, a demo dataset, a window whose "machine" recommends a tiny
demo run, and a check that no worker QThread outlives its test."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from qt_fixtures import no_running_qthreads, settings  # noqa: F401 (fixtures)
from support import TINY_DEMO, copy_demo_images

from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary, PresetOption


@pytest.fixture
def demo_folder(tmp_path) -> Path:
    """Four captioned demo images in a folder of their own."""
    return copy_demo_images(tmp_path / "photos")


def demo_summary(recommended: dict | None = None) -> MachineSummary:
    """A CPU machine whose recommendation is the tiny demo run."""
    return MachineSummary(
        devices=(DeviceInfo("CPU", "cpu"),),
        ram_total=16 * 1024**3,
        ram_available=8 * 1024**3,
        recommended=PresetOption("recommended", "Recommended", "The demo fits.", dict(recommended or TINY_DEMO)),
        reasons=("No supported GPU: the real model is not practical here; the demo model shows how it works.",),
        presets=(
            PresetOption(
                "demo-longer", "Demo, longer", "The demo model for 8 steps.", {**TINY_DEMO, "max_train_steps": 8}
            ),
            PresetOption("rank-8", "Demo, rank 8", "More capacity.", {**TINY_DEMO, "lora_rank": 8}),
        ),
    )


@pytest.fixture
def summary() -> MachineSummary:
    return demo_summary()


@pytest.fixture
def window(qtbot, settings, summary, monkeypatch):  # noqa: F811 (the fixture imported above)
    """The main window as launched, after the (fake) machine detection has answered."""
    from chroma_studio.gui.main_window import MainWindow

    win = MainWindow(settings, detector=lambda: summary)
    # Widgets are closed before this fixture ends: a test that fails while a run is on must not wait
    # for an answer to "Stop the training and close?" there.
    monkeypatch.setattr(win, "ask_to_stop_on_close", lambda: True)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.machine_detected, timeout=10_000):
        win.show()
    yield win
    win.controller.stop()
    win.controller.shutdown()
    win.dataset_page.shutdown()


@pytest.fixture
def silent_endpoint():
    """A Hub endpoint on this machine that accepts connections and never answers (a stalled network)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    connected = threading.Event()
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return
            connected.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connected
    server.close()
    for connection in held:
        connection.close()
