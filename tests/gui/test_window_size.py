"""The window on a laptop screen: every page fits 1024x640, the window opens within the screen, a
remembered place off the screen is brought back, and the window never resizes itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import QItemSelectionModel, QMargins, QRect, QSettings, QSize

from chroma_studio.gui.machine_info import PresetOption
from chroma_studio.gui.main_window import GEOMETRY_KEY, MAXIMIZED_KEY
from chroma_studio.gui.window_geometry import centered_rect, fit_rect, initial_geometry

SMALL = QSize(1024, 640)
NO_FRAME = QMargins()
PAGES = ("dataset", "machine", "train", "samples")


def assert_fits_small_screen(window, state: str) -> None:
    hint, minimum = window.minimumSizeHint(), window.minimumSize()
    for name, size in (("minimumSizeHint", hint), ("minimumSize", minimum)):
        assert size.width() <= SMALL.width() and size.height() <= SMALL.height(), (
            f"{state}: {name} {size.width()}x{size.height()} is larger than {SMALL.width()}x{SMALL.height()}"
        )


def load_folder(window, folder) -> None:
    page = window.dataset_page
    page.set_folders([str(folder)])
    page.wait_for_background(20_000)
    index = page.filter_model.index(0, 0)
    page.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)


def many_presets() -> list[PresetOption]:
    """As many cards as a real machine's list shows, with descriptions of a real length."""
    description = "RTX 3090 / 4090 / RX 7900 XTX class. int8 (quanto) at 1024 px, two images per step."
    return [
        PresetOption(f"card-{n}", f"{n * 8} GB card", description, needs=f"a {n * 8} GB NVIDIA or AMD card")
        for n in range(1, 9)
    ]


def test_every_page_fits_a_small_laptop_screen(qtbot, window, demo_folder):
    window.train_page.set_presets(many_presets())
    for key in PAGES:
        window.show_page(key)
        assert_fits_small_screen(window, f"{key}, empty project")
    load_folder(window, demo_folder)
    for key in PAGES:
        window.show_page(key)
        assert_fits_small_screen(window, f"{key}, a folder loaded")
    window.show_page("train")
    window.train_page.advanced_toggle.setChecked(True)
    assert_fits_small_screen(window, "train, advanced settings open")
    window.train_page.show_run()
    window.header.set_run_status("running")
    assert_fits_small_screen(window, "train, a run on screen")


def test_the_window_never_resizes_itself(qtbot, window, demo_folder):
    window.train_page.set_presets(many_presets())
    window.resize(SMALL)
    qtbot.waitUntil(lambda: window.size() == SMALL)
    load_folder(window, demo_folder)
    qtbot.wait(50)
    assert window.size() == SMALL
    window.show_page("train")
    window.train_page.advanced_toggle.setChecked(True)
    qtbot.wait(50)
    assert window.size() == SMALL
    window.train_page.show_run()
    window.show_page("samples")
    qtbot.wait(50)
    assert window.size() == SMALL


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (QRect(100, 20, 800, 600), QRect(100, 20, 800, 600)),  # fits: left as it was
        (QRect(0, 0, 2560, 1440), QRect(0, 0, 1280, 650)),  # too large: as large as the screen
        (QRect(3000, 2000, 800, 600), QRect(480, 50, 800, 600)),  # off the screen: moved onto it
        (QRect(-900, -50, 1000, 500), QRect(0, 0, 1000, 500)),
    ],
)
def test_fit_rect_keeps_the_window_within_the_screen(wanted, expected):
    assert fit_rect(wanted, QRect(0, 0, 1280, 650), NO_FRAME) == expected


def test_fit_rect_keeps_the_minimum_size_the_layout_needs():
    assert fit_rect(QRect(900, 100, 300, 200), QRect(0, 0, 1280, 650), NO_FRAME, QSize(600, 400)) == QRect(
        680, 100, 600, 400
    )


def test_a_default_window_is_centred_and_leaves_room_for_its_frame():
    rect = centered_rect(QSize(1280, 820), QRect(0, 0, 1280, 690), QMargins(8, 32, 8, 8))
    assert rect == QRect(8, 32, 1264, 650)


# -- on a laptop's screen: QT_QPA_PLATFORM is read when the QApplication starts, so in a process of its own
LAPTOP = {"width": 1280, "height": 720}
OPEN_WINDOW = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QSettings
    from chroma_studio.gui.app import create_application
    from chroma_studio.gui.main_window import MainWindow
    from chroma_studio.gui.session import AppSettings

    app = create_application([sys.argv[0]])
    settings = AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat))
    window = MainWindow(settings, detector=None)
    window.show()
    app.processEvents()
    frame, available = window.frameGeometry(), window.screen().availableGeometry()
    print(json.dumps({"frame": frame.getRect(), "available": available.getRect(),
                      "maximized": window.isMaximized()}))
    window.close()
    window.dataset_page.wait_for_background(10_000)
    """
)


def open_window_on_laptop(tmp_path, remembered: QRect | None = None) -> dict:
    ini = tmp_path / "settings.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    settings.setValue("paths/output_folder", str(tmp_path / "runs"))
    settings.setValue("paths/cache_folder", str(tmp_path / "cache"))
    if remembered is not None:
        settings.setValue(GEOMETRY_KEY, remembered)
        settings.setValue(MAXIMIZED_KEY, False)
    settings.sync()
    screens = tmp_path / "screens.json"
    screen = {"name": "laptop", "x": 0, "y": 0, **LAPTOP, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}
    screens.write_text(json.dumps({"screens": [screen]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={screens}"}
    done = subprocess.run(
        [sys.executable, "-c", OPEN_WINDOW, str(ini)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_within(frame: list[int], available: list[int]) -> None:
    assert QRect(*available).contains(QRect(*frame)), f"window {frame} is not within the screen {available}"


def test_the_window_opens_within_a_laptop_screen(tmp_path):
    opened = open_window_on_laptop(tmp_path)
    assert opened["available"] == [0, 0, LAPTOP["width"], LAPTOP["height"]]
    assert_within(opened["frame"], opened["available"])


@pytest.mark.parametrize(
    "remembered",
    [QRect(0, 0, 2560, 1440), QRect(3000, 1800, 900, 600), QRect(-2000, 100, 1200, 700)],
    ids=["larger than the screen", "on a monitor no longer connected", "left of the screen"],
)
def test_a_remembered_place_off_the_screen_is_brought_back(tmp_path, remembered):
    opened = open_window_on_laptop(tmp_path, remembered)
    assert_within(opened["frame"], opened["available"])
    assert not opened["maximized"]


def test_the_window_remembers_where_it_was(qtbot, settings):
    from chroma_studio.gui.main_window import MainWindow

    first = MainWindow(settings, detector=None)
    qtbot.addWidget(first)
    first.show()
    first.move(first.x() + 5, first.y() + 7)
    closed_at = first.geometry()
    first.close()
    first.dataset_page.wait_for_background(10_000)
    assert settings.qsettings.value(GEOMETRY_KEY) == closed_at
    second = MainWindow(settings, detector=None)
    qtbot.addWidget(second)
    assert second.geometry() == initial_geometry(closed_at, second.minimumSizeHint())
    second.close()
    second.dataset_page.wait_for_background(10_000)
