"""End-to-end fixtures: isolated settings, a demo image folder, and no QThread left behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from chroma_studio.gui.session import AppSettings
from chroma_studio.paths import resources_dir


@pytest.fixture(autouse=True)
def no_running_qthreads():
    from chroma_studio.gui import worker

    yield
    left = worker.running_threads()
    for thread in left:
        thread.quit()
        thread.wait(30_000)
    assert not left, f"test left QThreads running: {[t.objectName() for t in left]}"


@pytest.fixture
def settings(tmp_path) -> AppSettings:
    app_settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    app_settings.output_folder = str(tmp_path / "runs")
    app_settings.cache_folder = str(tmp_path / "cache")
    return app_settings


@pytest.fixture
def photos(tmp_path) -> Path:
    """Six captioned demo photos, as a user would have them in a folder."""
    folder = tmp_path / "my photos"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins"):
        for suffix in (".jpg", ".txt"):
            shutil.copy(resources_dir() / "demo" / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder
