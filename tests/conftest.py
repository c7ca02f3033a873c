"""Test-wide setup: headless Qt, no network, a private cache, and no leaked threads, engine processes
or temporary files."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import psutil
import pytest
from support import engine_processes

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download weights
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# The session's own folder: the cache, and what the code under test takes for the system's temporary
# folder (TMPDIR, inherited by engine processes), which must be empty again at the end. pytest keeps
# its tmp_path folders in the real one.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="chroma-studio-tests-"))
_TEMP_DIR = _SESSION_DIR / "tmp"
_TEMP_DIR.mkdir()
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
os.environ["TMPDIR"] = tempfile.tempdir = str(_TEMP_DIR)
os.environ.setdefault("CHROMA_STUDIO_CACHE_DIR", str(_SESSION_DIR / "cache"))
# The data folder holds the queue of runs the app and the command line share: never the user's own.
os.environ["CHROMA_STUDIO_DATA_DIR"] = str(_SESSION_DIR / "data")
# Importing optimum.quanto makes torch create its compile cache, by default <temp>/torchinductor_<user>.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_SESSION_DIR / "torchinductor"))


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_temporary_files():
    """Fail the session when the tests leave anything in the temporary folder outside tmp_path."""
    yield
    left = sorted(p.name for p in _TEMP_DIR.iterdir() if not p.name.startswith("pytest-of-"))
    assert not left, f"the tests left these in the system's temporary folder (TMPDIR): {left}"


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a Python thread running."""
    before = set(threading.enumerate())
    yield
    leaked = []
    for thread in set(threading.enumerate()) - before:
        if thread.daemon:
            continue
        thread.join(timeout=5)
        if thread.is_alive():
            leaked.append(thread.name)
    assert not leaked, f"test left threads running: {leaked}"


@pytest.fixture(autouse=True)
def no_leaked_engine_processes():
    """Fail a test that leaves an engine process (``chroma_studio.training.child``) running."""
    yield
    leaked = []
    for child in engine_processes():
        try:
            child.wait(timeout=10)
        except psutil.TimeoutExpired:
            leaked.append(child.pid)
            child.kill()
        except psutil.Error:
            continue
    assert not leaked, f"test left engine processes running: {leaked}"
