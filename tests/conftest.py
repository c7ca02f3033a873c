"""Test-wide setup: headless Qt, no network, a private cache, and no leaked threads or engine processes."""

from __future__ import annotations

import os
import tempfile
import threading

import psutil
import pytest
from support import engine_processes

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download weights
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("CHROMA_STUDIO_CACHE_DIR", tempfile.mkdtemp(prefix="chroma-studio-test-cache-"))


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
