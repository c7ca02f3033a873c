"""The Dataset page's image check as ``JobRunner`` work: in the engine process, with progress and cancel."""

from __future__ import annotations

import sys
import threading

import pytest
from support import copy_demo_images, engine_processes

from chroma_studio.gui.dataset.jobs import check_in_engine_process, check_work
from chroma_studio.protocol import remote
from chroma_studio.protocol.jobs import DatasetCheckJob


def test_the_check_work_badges_damaged_images_and_reports_progress(tmp_path):
    folder = copy_demo_images(tmp_path / "data")
    data = (folder / "rocket.jpg").read_bytes()
    (folder / "rocket.jpg").write_bytes(data[: len(data) // 3])
    progress = []

    found = check_work([str(folder)], 512)(lambda done, total, detail="": progress.append((done, total)), lambda: False)

    assert "corrupt" in found[folder.absolute() / "rocket.jpg"]
    assert progress[-1] == (4, 4)
    assert not engine_processes()


def test_a_cancelled_check_ends_its_process_and_says_so(tmp_path):
    folder = copy_demo_images(tmp_path / "data")
    stop = threading.Event()
    stop.set()

    checked = check_in_engine_process(DatasetCheckJob((str(folder),)), lambda *_: None, stop.is_set)

    assert checked.cancelled
    assert not engine_processes()


def test_a_check_whose_process_dies_fails_with_the_reason(tmp_path, monkeypatch):
    script = tmp_path / "dies.py"
    script.write_text("import os, sys\nsys.stdin.readline()\nos._exit(3)\n")
    monkeypatch.setattr(remote, "child_command", lambda: [sys.executable, str(script)])

    with pytest.raises(RuntimeError, match=r"The background process ended unexpectedly \(exit code 3\)"):
        check_in_engine_process(DatasetCheckJob((str(tmp_path),)), lambda *_: None, lambda: False)


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux keeps file names that are not UTF-8 as bytes")
def test_a_file_name_that_is_not_utf8_comes_back_from_the_engine_intact(tmp_path):
    import os

    folder = copy_demo_images(tmp_path / "data")
    odd = folder / os.fsdecode(b"caf\xe9.jpg")  # a lone surrogate in Python's name for it
    data = (folder / "rocket.jpg").read_bytes()
    odd.write_bytes(data[: len(data) // 3])  # damaged, so the check reports it by its path

    found = check_work([str(folder)], 512)(lambda *_: None, lambda: False)

    assert "corrupt" in found[odd.absolute()]
    assert not engine_processes()
