"""The lock-file protocol the run folder's and the queue's locks share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from chroma_studio.base.lock_file import LockFile, process_alive, this_process
from chroma_studio.base.queue_lock import COMMAND_LINE, QueueBusy, QueueLock
from chroma_studio.base.run_lock import RunFolderInUse, RunLock


class Refused(Exception):
    pass


class PlainLock(LockFile):
    def _refused(self, owner):
        return Refused(owner)


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_the_file_names_this_process_while_held_and_is_gone_after(tmp_path):
    lock = PlainLock(tmp_path / "x.lock")
    lock.acquire()
    assert json.loads(lock.path.read_text()) == this_process()
    assert lock.owner() == this_process() and lock.held
    lock.acquire()  # held already by this process: no error, nothing rewritten
    lock.release()
    assert not lock.path.exists() and not lock.held
    lock.release()  # a second release does nothing


def test_a_live_owner_refuses_and_its_file_is_kept(tmp_path, sleeper):
    owner = {"pid": sleeper.pid, "started": psutil.Process(sleeper.pid).create_time()}
    path = tmp_path / "x.lock"
    path.write_text(json.dumps(owner))
    with pytest.raises(Refused) as refused:
        PlainLock(path).acquire()
    assert refused.value.args[0] == owner
    assert json.loads(path.read_text()) == owner


@pytest.mark.parametrize("content", ["", "{half", "[1, 2]", '"text"', '{"pid": "x"}'])
def test_a_file_that_names_no_live_process_is_taken_over(tmp_path, content):
    path = tmp_path / "x.lock"
    path.write_text(content)
    for lock in (PlainLock(path), RunLock(path), QueueLock(path, COMMAND_LINE)):
        lock.acquire()
        assert json.loads(path.read_text())["pid"] == os.getpid()
        lock.release()
        path.write_text(content)


def test_this_pid_with_another_start_time_is_an_ended_process_and_taken_over(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"pid": os.getpid(), "started": 1.0}))
    assert not process_alive(json.loads(path.read_text()))
    lock = RunLock(path)
    lock.acquire()
    assert json.loads(path.read_text()) == this_process()  # rewritten: a later reader sees it alive
    lock.release()


def test_each_lock_keeps_its_own_error(tmp_path, sleeper):
    owner = {"pid": sleeper.pid, "started": psutil.Process(sleeper.pid).create_time()}
    (tmp_path / "run.lock").write_text(json.dumps(owner))
    (tmp_path / "queue.lock").write_text(json.dumps({**owner, "runner": "the app", "since": 0}))
    with pytest.raises(RunFolderInUse, match=f"process {sleeper.pid}") as in_use:
        RunLock(tmp_path / "run.lock").acquire()
    assert in_use.value.folder == Path(tmp_path) and in_use.value.owner_pid == sleeper.pid
    with pytest.raises(QueueBusy, match=f"run by the app \\(process {sleeper.pid}"):
        QueueLock(tmp_path / "queue.lock", COMMAND_LINE).acquire()
