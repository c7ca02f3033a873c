"""Qt fixtures shared by the GUI and end-to-end tests (imported into their conftest files)."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import pytest
from PySide6.QtCore import QSettings

from chroma_studio.gui.session import AppSettings


@pytest.fixture(autouse=True)
def no_running_qthreads():
    """Fail a test that leaves a worker QThread running (and stop it, so the next test is clean).

    It also collects the test's garbage here, on the GUI thread. Otherwise a Qt object left in a
    reference cycle (a Studio and its queue's poll timer) may be collected later on whatever thread
    happens to trigger the collector, a pool thread of the next test, and Qt then fires a timer of
    an object deleted behind its back: a crash in an unrelated test.
    """
    from chroma_studio.gui import worker

    yield
    gc.collect()
    left = worker.running_threads()
    for thread in left:
        thread.quit()
        thread.wait(30_000)
    assert not left, f"test left QThreads running: {[t.objectName() for t in left]}"


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    """App settings in a private file, with output and cache folders under tmp_path."""
    app_settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    app_settings.output_folder = str(tmp_path / "runs")
    app_settings.cache_folder = str(tmp_path / "cache")
    return app_settings


# -- the Dataset page, shared by its test files ---------------------------------------------------
DATASET_WAIT_MS = 20_000
CP1252_CAPTION = b"caf\xe9 au lait on a table"  # not UTF-8


@contextmanager
def open_dataset_page(qtbot, resolution: int):
    """A shown DatasetPage of a project at ``resolution``; its background work is finished when the block ends."""
    from chroma_studio.gui.pages.dataset import DatasetPage
    from chroma_studio.gui.studio import Studio

    studio = Studio(detector=None)
    studio.set_resolution(resolution)
    page = DatasetPage(studio)
    qtbot.addWidget(page)
    page.resize(1200, 760)
    page.show()
    yield page
    page.shutdown()
    assert page.wait_for_background(10_000)
    studio.shutdown()


def load_folder(page, qtbot, folder) -> None:
    """Set the page's folder and wait until its images are scanned and checked."""
    with qtbot.waitSignal(page.images_checked, timeout=DATASET_WAIT_MS):
        page.set_folders([str(folder)])
