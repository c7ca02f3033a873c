"""End-to-end fixtures: isolated settings, a demo image folder, and no QThread left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from qt_fixtures import no_running_qthreads, settings  # noqa: F401 (fixtures)
from support import copy_demo_images


@pytest.fixture
def photos(tmp_path) -> Path:
    """Six captioned demo photos, as a user would have them in a folder."""
    return copy_demo_images(tmp_path / "my photos", ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins"))
