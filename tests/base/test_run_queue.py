"""The queue file: order, reorder, remove, persistence across a reload, refusals, atomic writes, and
the one-runner lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest
from support import queue_held_by_command_line

from chroma_studio.base import atomic, run_queue
from chroma_studio.base.queue_lock import APP, QueueBusy
from chroma_studio.base.run_queue import EntryStatus, QueueError, QueueFileError, RunQueue, default_queue_path


def config(tmp_path, name: str, **extra) -> dict:
    return {"output_dir": str(tmp_path / "runs" / name), "max_train_steps": 4, **extra}


@pytest.fixture
def queue(tmp_path) -> RunQueue:
    return RunQueue(tmp_path / "data" / "queue.json")


def ids(queue: RunQueue) -> list[int]:
    return [e.id for e in queue.entries]


def test_entries_keep_their_order_and_survive_a_reload(queue, tmp_path):
    for name in ("a", "b", "c"):
        queue.add(config(tmp_path, name))
    again = RunQueue(queue.path)
    assert [e.name for e in again.entries] == ["a", "b", "c"]
    assert ids(again) == [1, 2, 3]
    assert again.entries[0].config == config(tmp_path, "a")
    assert again.next_entry().name == "a"
    assert all(e.status is EntryStatus.WAITING for e in again.entries)


def test_reorder_and_remove(queue, tmp_path):
    for name in ("a", "b", "c", "d"):
        queue.add(config(tmp_path, name))
    queue.move(4, -2)
    assert ids(queue) == [1, 4, 2, 3]
    queue.move(1, 99)  # stops at the end
    assert ids(queue) == [4, 2, 3, 1]
    queue.remove(2)
    assert ids(RunQueue(queue.path)) == [4, 3, 1]
    queue.add(config(tmp_path, "e"))
    assert ids(queue) == [4, 3, 1, 5]  # ids are never reused
    with pytest.raises(QueueError, match="no entry 2"):
        queue.remove(2)


def test_a_second_program_s_changes_are_kept(queue, tmp_path):
    queue.add(config(tmp_path, "a"))
    other = RunQueue(queue.path)  # the command line, say
    other.add(config(tmp_path, "b"))
    queue.add(config(tmp_path, "c"))  # reads the file first: b stays
    assert [e.name for e in RunQueue(queue.path).entries] == ["a", "b", "c"]


def test_the_same_output_folder_twice_is_refused(queue, tmp_path):
    queue.add(config(tmp_path, "a"))
    with pytest.raises(QueueError, match=r"Entry 1 \(a\) already trains into .*another output_dir"):
        queue.add(config(tmp_path, "a", lora_rank=8))
    assert len(RunQueue(queue.path).entries) == 1


def test_a_folder_that_holds_a_run_already_is_refused(queue, tmp_path):
    done = tmp_path / "runs" / "done"
    done.mkdir(parents=True)
    (done / "pytorch_lora_weights.safetensors").write_bytes(b"0")
    with pytest.raises(QueueError, match="already holds a run"):
        queue.add(config(tmp_path, "done"))
    with pytest.raises(QueueError, match="absolute"):
        queue.add({"output_dir": "relative/run"})
    assert queue.entries == []


def test_an_interrupted_entry_resumes_first(queue, tmp_path):
    for name in ("a", "b", "c"):
        queue.add(config(tmp_path, name))
    queue.mark_started(1)
    queue.mark_ended(1, EntryStatus.FINISHED, 4, "/x/lora.safetensors")
    queue.move(3, -1)
    assert [e.name for e in queue.waiting()] == ["c", "b"]
    queue.mark_started(2)
    queue.mark_interrupted(2, step=2)
    again = RunQueue(queue.path)
    entry = again.next_entry()
    assert (entry.name, entry.label, entry.step) == ("b", "waiting (resume)", 2)
    assert entry.run_config()["resume_from_checkpoint"] == "latest"
    assert "resume_from_checkpoint" not in again.get(3).run_config()
    assert [e.name for e in again.entries] == ["a", "b", "c"]  # first in the line
    again.mark_started(2)
    again.mark_ended(2, EntryStatus.FAILED, 3, "out of memory")
    assert (again.get(2).label, again.get(2).result, again.get(2).resume) == ("failed", "out of memory", False)


def test_a_running_entry_of_a_runner_that_died_becomes_interrupted(queue, tmp_path):
    queue.add(config(tmp_path, "a"))
    queue.mark_started(1)
    assert [e.id for e in RunQueue(queue.path).recover()] == [1]
    assert RunQueue(queue.path).get(1).label == "waiting (resume)"


def test_a_damaged_queue_file_is_named_and_left_alone(tmp_path):
    path = tmp_path / "queue.json"
    path.write_text('{"chroma_studio_queue": 1, "entries": [{"id": "x"}')
    with pytest.raises(QueueFileError, match=r"queue.json is damaged .*move it aside"):
        RunQueue(path)
    assert path.read_text().endswith('"x"}')


def test_a_failed_write_keeps_the_previous_file(queue, tmp_path, monkeypatch):
    queue.add(config(tmp_path, "a"))
    before = queue.path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        queue.add(config(tmp_path, "b"))
    assert queue.path.read_bytes() == before
    assert [p.name for p in queue.path.parent.iterdir()] == ["queue.json"]  # no temporary file left


def test_the_file_lives_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMA_STUDIO_DATA_DIR", str(tmp_path / "data"))
    assert default_queue_path() == tmp_path / "data" / "queue.json"
    queue = RunQueue()
    queue.add(config(tmp_path, "a"))
    assert json.loads((tmp_path / "data" / "queue.json").read_text())["entries"][0]["name"] == "a"


def test_one_runner_per_queue(queue, tmp_path):
    with queue_held_by_command_line(queue.path) as holder:
        lock = queue.lock(APP)
        with pytest.raises(QueueBusy, match=rf"run by the command line \(process {holder.pid} on .*, since "):
            lock.acquire()
        assert lock.held_by_other()["pid"] == holder.pid
    lock.acquire()  # the lock of a process that has ended is taken over
    assert lock.held and lock.held_by_other() is None
    assert json.loads(lock.path.read_text())["runner"] == APP
    lock.release()
    assert not lock.path.exists()
    assert os.listdir(queue.path.parent) == []


# -- changes made at the same instant ---------------------------------------------------------------

ADDER = """
import sys, time
from pathlib import Path
from chroma_studio.base.run_queue import RunQueue

queue_path, runs, name, go = sys.argv[1:5]
while not Path(go).exists():  # every process starts adding at the same instant
    time.sleep(0.001)
queue = RunQueue(queue_path, load=False)
for i in range(10):
    queue.add({"output_dir": str(Path(runs) / f"{name}-{i}"), "max_train_steps": 4})
"""


def test_adds_from_several_programs_at_once_are_all_kept(queue, tmp_path):
    go = tmp_path / "go"
    adders = [
        subprocess.Popen([sys.executable, "-c", ADDER, str(queue.path), str(tmp_path / "runs"), f"p{n}", str(go)])
        for n in range(4)
    ]
    go.touch()
    assert [adder.wait(timeout=60) for adder in adders] == [0, 0, 0, 0]
    queue.reload()
    assert sorted(e.name for e in queue.entries) == sorted(f"p{n}-{i}" for n in range(4) for i in range(10))
    assert sorted(ids(queue)) == list(range(1, 41))  # no id given twice
    assert not queue.path.with_name("queue.json.lock").exists()  # released after each change


def test_a_change_waits_for_a_live_holder_then_says_who_holds_the_queue(queue, tmp_path, monkeypatch):
    monkeypatch.setattr(run_queue, "CHANGE_WAIT", 0.2)
    queue.path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock = queue.path.with_name("queue.json.lock")
        lock.write_text(json.dumps({"pid": holder.pid, "started": psutil.Process(holder.pid).create_time()}))
        with pytest.raises(QueueError, match=f"Process {holder.pid} has held .*queue.json.lock for over 0.2 s"):
            queue.add(config(tmp_path, "a"))
        assert lock.exists() and not queue.entries
    finally:
        holder.kill()
        holder.wait()
    queue.add(config(tmp_path, "a"))  # its holder ended: the lock is taken over
    assert [e.name for e in RunQueue(queue.path).entries] == ["a"]
