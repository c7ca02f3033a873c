"""One training at a time per output folder: a live owner is named, a dead one's lock is taken over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil

from chroma_studio.base.run_folder import LOCK, RunFolder
from chroma_studio.protocol import events as ev
from chroma_studio.training.trainer import run_training


def write_lock(folder: Path, pid: int, started: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(json.dumps({"pid": pid, "started": started}))


def test_a_folder_in_use_by_a_live_training_is_refused_with_its_process_named(make_config, events):
    config = make_config()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(Path(config.run.output_dir), other.pid, psutil.Process(other.pid).create_time())
        result = run_training(config, events)
    finally:
        other.kill()
        other.wait()
    assert result.status == "failed"
    failure = events.of(ev.Failed)[-1]
    assert f"process {other.pid}" in failure.message and config.run.output_dir in failure.message
    assert "wait a moment" in failure.hint and not failure.traceback
    assert (Path(config.run.output_dir) / LOCK).exists()  # still the other one's
    assert not (Path(config.run.output_dir) / "checkpoints").exists()


def test_a_refused_run_writes_nothing_into_the_folder(make_config, events):
    config = make_config()
    out = Path(config.run.output_dir)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(out, other.pid, psutil.Process(other.pid).create_time())
        (out / "log.txt").write_text("the running run's log\n")
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        result = run_training(config, events)
    finally:
        other.kill()
        other.wait()
    assert result.status == "failed" and "Another training" in events.of(ev.Failed)[-1].message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_lock_of_an_ended_process_is_taken_over_and_released_at_the_end(make_config):
    config = make_config()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    write_lock(Path(config.run.output_dir), ended.pid, 1.0)
    assert run_training(config).status == "finished"
    assert not (Path(config.run.output_dir) / LOCK).exists()


def test_a_reused_pid_does_not_count_as_the_owner(tmp_path):
    me = psutil.Process()
    parent = me.parent()  # alive, but not the process that wrote the lock (other start time)
    write_lock(tmp_path, parent.pid, parent.create_time() - 1000)
    lock = RunFolder(tmp_path).lock()
    lock.acquire()
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == me.pid
    lock.release()
    assert not (tmp_path / LOCK).exists()
