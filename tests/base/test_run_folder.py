"""The run folder: every file's place, and reading back what was written (no engine needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import psutil
import pytest

from chroma_studio.base import run_folder as runs
from chroma_studio.base.atomic import usual_mode
from chroma_studio.base.run_folder import RunFolder
from chroma_studio.base.run_lock import RunFolderInUse


def test_each_file_has_one_place(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.config_file == tmp_path / "config.json"
    assert folder.metrics_file == tmp_path / "metrics.jsonl"
    assert folder.sample_index_file == tmp_path / "samples" / "index.jsonl"
    assert folder.sample_image(12, 1) == tmp_path / "samples" / "step_000012_p1.png"
    assert folder.checkpoint_dir(4) == tmp_path / "checkpoints" / "step_4"
    assert folder.lora_file() == tmp_path / "pytorch_lora_weights.safetensors"
    assert folder.lora_file("kohya", step=5) == tmp_path / "chroma_lora_kohya_step_5.safetensors"
    assert folder.lock_file.parent == tmp_path


def test_config_is_written_whole_and_a_damaged_one_reads_as_empty(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_config({"max_train_steps": 8, "lora_rank": 4})
    assert folder.read_config() == {"max_train_steps": 8, "lora_rank": 4}
    assert [p.name for p in folder.path.iterdir()] == ["config.json"]  # no temporary file left
    folder.config_file.write_text("{ cut")
    assert folder.read_config() == {}


def test_metrics_resume_keeps_the_lines_up_to_the_checkpoint_and_appends(tmp_path):
    folder = RunFolder(tmp_path)
    with folder.open_metrics(0) as metrics:
        for step in range(1, 6):
            metrics.write({"step": step, "loss": 0.5, "lr": 1e-4})
    with open(folder.metrics_file, "a") as handle:
        handle.write('{"step": 6, "lo')  # cut by a crash
    assert [r["step"] for r in folder.read_metrics()] == [1, 2, 3, 4, 5]
    assert folder.last_metrics_step() == 5
    with folder.open_metrics(3) as metrics:  # resumed from the checkpoint at step 3
        metrics.write({"step": 4, "loss": 0.25})
        assert folder.last_metrics_step() == 4  # on disk at once
    assert [(r["step"], r["loss"]) for r in folder.read_metrics()] == [(1, 0.5), (2, 0.5), (3, 0.5), (4, 0.25)]
    assert runs.read_metrics(tmp_path) == folder.read_metrics()
    with folder.open_metrics(0):
        pass
    assert folder.read_metrics() == [] and folder.last_metrics_step() == 0


def test_the_last_step_is_read_from_the_end_of_a_long_metrics_file(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    with folder.open_metrics(0) as metrics:
        for step in range(1, 2001):
            metrics.write({"step": step, "loss": 0.5})
    monkeypatch.setattr(runs, "read_metrics", lambda run_dir: pytest.fail("parsed the whole metrics file"))
    assert folder.last_metrics_step() == 2000 and runs.last_metrics_step(tmp_path) == 2000


def test_samples_and_their_index(tmp_path):
    folder = RunFolder(tmp_path)
    path = folder.write_sample_image(3, 0, b"\x89PNG")
    folder.append_sample_record({"step": 3, "prompt_index": 0, "file": path.name})
    folder.append_sample_record({"step": 3})  # not a sample record: no file
    assert path.read_bytes() == b"\x89PNG"
    assert folder.read_sample_index() == [{"step": 3, "prompt_index": 0, "file": "step_000003_p0.png"}]


def test_the_log_keeps_its_last_lines(tmp_path):
    folder = RunFolder(tmp_path)
    folder.append_log([f"line {i}\n" for i in range(10)])
    assert folder.read_log(limit=3) == ["line 7", "line 8", "line 9"]
    assert RunFolder(tmp_path / "none").read_log() == []


def save(folder: RunFolder, step: int, state: dict | None = None):
    tmp = folder.start_checkpoint(step)
    (tmp / runs.CHECKPOINT_STATE).write_text(json.dumps(state or {"step": step}))
    return folder.publish_checkpoint(tmp, step)


def test_checkpoints_are_published_whole_listed_in_order_and_pruned(tmp_path):
    folder = RunFolder(tmp_path)
    assert folder.checkpoints() == [] and folder.latest_checkpoint() is None
    for step in (10, 2, 5):
        save(folder, step)
    (folder.checkpoints_dir / "step_7").mkdir()  # no state file: not a checkpoint
    assert [step for step, _ in folder.checkpoints()] == [2, 5, 10]
    assert folder.latest_checkpoint() == folder.checkpoint_dir(10)
    save(folder, 10, {"step": 10, "again": True})  # the same step saved again replaces it
    assert folder.read_checkpoint_state(folder.checkpoint_dir(10)) == {"step": 10, "again": True}
    folder.prune_checkpoints(2)
    assert [step for step, _ in folder.checkpoints()] == [5, 10]
    assert not [p for p in folder.checkpoints_dir.iterdir() if p.name.startswith(".")]
    assert folder.read_checkpoint_state(tmp_path / "nowhere") == {}


def test_a_prune_ended_halfway_leaves_no_half_deleted_checkpoint_in_sight(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    for step in (2, 4, 6):
        (save(folder, step).parent / f"step_{step}" / "lora.safetensors").write_bytes(b"weights")
    real_rmtree = runs.shutil.rmtree

    def killed_while_deleting(path, ignore_errors=False):
        if not os.path.exists(path):
            return
        os.remove(os.path.join(path, "lora.safetensors"))  # one file gone, then the process ends
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.shutil, "rmtree", killed_while_deleting)
    with pytest.raises(KeyboardInterrupt):
        folder.prune_checkpoints(1)
    monkeypatch.setattr(runs.shutil, "rmtree", real_rmtree)
    assert [step for step, _ in folder.checkpoints()] == [4, 6]
    assert all((path / "lora.safetensors").is_file() for _, path in folder.checkpoints())
    assert folder.latest_checkpoint() == folder.checkpoint_dir(6)  # what a resume takes
    tmp = folder.start_checkpoint(8)  # the next save sweeps the leftover away
    assert sorted(p.name for p in folder.checkpoints_dir.iterdir()) == sorted(["step_4", "step_6", tmp.name])


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_every_file_of_a_published_checkpoint_gets_the_usual_mode(tmp_path):
    folder = RunFolder(tmp_path)
    tmp = folder.start_checkpoint(1)
    private = tmp / "lora.safetensors"
    private.write_bytes(b"weights")
    private.chmod(0o600)  # as safetensors writes it
    (tmp / runs.CHECKPOINT_STATE).write_text("{}")
    final = folder.publish_checkpoint(tmp, 1)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in final.iterdir()} == {
        "lora.safetensors": usual_mode(),
        runs.CHECKPOINT_STATE: usual_mode(),
    }


def test_a_new_checkpoint_clears_what_a_crash_left_and_gets_the_usual_permissions(tmp_path):
    folder = RunFolder(tmp_path)
    save(folder, 1)
    folder.checkpoint_dir(1).rename(folder.checkpoints_dir / ".old.step_1")  # killed mid-swap
    (folder.checkpoints_dir / ".step_3.abc").mkdir()  # killed mid-write
    tmp = folder.start_checkpoint(2)
    assert sorted(p.name for p in folder.checkpoints_dir.iterdir()) == sorted(["step_1", tmp.name])
    assert stat.S_IMODE(tmp.stat().st_mode) == usual_mode(folder=True)  # not mkdtemp's private 0700


def test_finished_means_the_lora_is_there_and_every_step_was_trained(tmp_path):
    folder = RunFolder(tmp_path)
    assert not folder.is_finished(10, 10)
    folder.lora_file().write_bytes(b"\0")
    assert folder.is_finished(10, 10) and folder.is_finished(3, 0)
    assert not folder.is_finished(4, 10)  # stopped early: its LoRA is written too


def test_the_lock_names_a_live_owner_and_is_released(tmp_path):
    folder = RunFolder(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = {"pid": other.pid, "started": psutil.Process(other.pid).create_time()}
        folder.lock_file.write_text(json.dumps(owner))
        with pytest.raises(RunFolderInUse, match=f"process {other.pid}") as info:
            folder.lock().acquire()
        assert info.value.owner_pid == other.pid and str(tmp_path) in str(info.value)
    finally:
        other.kill()
        other.wait()
    lock = folder.lock()
    lock.acquire()  # the owner has ended: taken over
    assert json.loads(folder.lock_file.read_text())["pid"] == os.getpid()
    lock.release()
    assert not folder.lock_file.exists()
