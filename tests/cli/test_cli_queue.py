"""``chroma-studio queue``: add, list, remove and run on the demo model; a failed entry does not stop
the queue; one runner per queue; Ctrl-C leaves the running entry to resume first."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import TINY_DEMO, copy_demo_images

from chroma_studio.base.run_queue import RunQueue
from chroma_studio.cli import main


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("CHROMA_STUDIO_DATA_DIR", str(folder))
    return folder


def write_config(tmp_path: Path, name: str, **overrides) -> Path:
    """A tiny demo config with relative paths (the queue keeps them absolute)."""
    folder = tmp_path / name
    copy_demo_images(folder / "photos")
    values = {**TINY_DEMO, "max_train_steps": 2, "validation_steps": 0, "dataset_dirs": ["photos"]}
    values.update(output_dir="run", cache_dir=str(tmp_path / "cache"), **overrides)
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


def test_add_list_and_remove(data_dir, tmp_path, capsys):
    first = write_config(tmp_path, "first")
    assert main(["queue", "add", str(first), "--name", "portraits"]) == 0
    assert "Added entry 1 (portraits), number 1 in line" in capsys.readouterr().out
    entry = RunQueue(data_dir / "queue.json").get(1)
    assert entry.config["output_dir"] == str(tmp_path / "first" / "run")
    assert entry.config["dataset_dirs"] == [str(tmp_path / "first" / "photos")]

    assert main(["queue", "add", str(first)]) == 2
    assert "Entry 1 (portraits) already trains into" in capsys.readouterr().err
    assert main(["queue", "add", str(first), "--output-dir", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert main(["queue", "list"]) == 0
    out = capsys.readouterr().out
    assert "   1  waiting                   0/2  portraits" in out and "   2  waiting" in out
    assert str(tmp_path / "other") in out
    assert main(["queue", "remove", "1"]) == 0
    assert main(["queue", "remove", "1"]) == 2
    assert "no entry 1" in capsys.readouterr().err
    assert [e.id for e in RunQueue(data_dir / "queue.json").entries] == [2]


def test_a_bad_config_or_queue_file_is_named(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"lerning_rate": 1}')
    assert main(["queue", "add", str(bad)]) == 2
    assert "lerning_rate: unknown setting" in capsys.readouterr().err
    data_dir.mkdir()
    (data_dir / "queue.json").write_text("{not json")
    assert main(["queue", "list"]) == 2
    assert "queue.json is damaged" in capsys.readouterr().err
    assert (data_dir / "queue.json").read_text() == "{not json"


def test_a_failing_entry_does_not_stop_the_queue(data_dir, tmp_path, capsys):
    broken = write_config(tmp_path, "broken")
    good = write_config(tmp_path, "good")
    assert main(["queue", "add", str(broken)]) == 0
    assert main(["queue", "add", str(good)]) == 0
    shutil.rmtree(tmp_path / "broken" / "photos")  # moved away after it was queued
    capsys.readouterr()
    assert main(["queue", "run"]) == 1
    out = capsys.readouterr().out
    assert "Entry 1 failed:" in out and "Entry 2 finished:" in out
    assert "The queue is done: 1 of 2 runs finished." in out
    queue = RunQueue(data_dir / "queue.json")
    assert [(e.label, e.step) for e in queue.entries] == [("failed", 0), ("finished", 2)]
    assert "photos" in queue.get(1).result
    assert (tmp_path / "good" / "run" / "pytorch_lora_weights.safetensors").is_file()
    assert queue.get(2).result == str(tmp_path / "good" / "run" / "pytorch_lora_weights.safetensors")
    assert main(["queue", "run"]) == 0  # nothing waits: nothing to fail
    assert "Nothing is waiting" in capsys.readouterr().out


def _queue_run() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chroma_studio", "queue", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
def test_a_second_runner_says_who_runs_the_queue_and_ctrl_c_resumes_first(data_dir, tmp_path, capsys):
    long = write_config(tmp_path, "long", max_train_steps=100_000)
    assert main(["queue", "add", str(long)]) == 0
    assert main(["queue", "add", str(write_config(tmp_path, "next"))]) == 0
    first = _queue_run()
    metrics = tmp_path / "long" / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)

    second = _queue_run()
    out, err = second.communicate(timeout=60)
    assert second.returncode == 3, err
    assert f"The queue is being run by the command line (process {first.pid} on " in err
    assert "Not starting a second run" in err and "Entry" not in out

    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=180)
    assert first.returncode == 130, err
    assert "Stopped entry 1 at step" in out
    assert list((tmp_path / "long" / "run" / "checkpoints").glob("step_*"))  # stopped with a checkpoint
    queue = RunQueue(data_dir / "queue.json")
    assert [e.label for e in queue.entries] == ["waiting (resume)", "waiting"]
    assert queue.next_entry().id == 1
    assert not (data_dir / "queue.lock").exists()
    capsys.readouterr()
    assert main(["queue", "list"]) == 0
    assert "   1  waiting (resume)" in capsys.readouterr().out
