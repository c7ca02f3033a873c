"""Checkpoints survive crashes and full disks; samples leave the training state as it was."""

import errno
import json
import shutil
from pathlib import Path

import pytest

from chroma_studio.base.run_folder import RunFolder
from chroma_studio.protocol import events as ev
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.training import checkpoint as ckpt
from chroma_studio.training.hub import _progress_class
from chroma_studio.training.trainer import run_training


def test_a_full_disk_while_saving_stops_cleanly_and_keeps_the_previous_checkpoint(make_config, events, monkeypatch):
    config = make_config(max_train_steps=6, checkpointing_steps=2)
    out = Path(config.run.output_dir)
    real_save = ckpt.save_file
    calls = {"n": 0}

    def failing_save(tensors, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint: write half a file, then the disk is full
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", failing_save)
    result = run_training(config, events)
    assert result.status == "failed"
    failed = events.of(ev.Failed)[-1]
    assert "disk is full" in failed.message and "earlier checkpoints are intact" in failed.hint
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_2"]  # no half-written folder
    kept = ckpt.load_checkpoint(out / "checkpoints" / "step_2", identity_of(config))
    assert kept.step == 2

    monkeypatch.setattr(ckpt, "save_file", real_save)
    resumed = run_training(config.replace(resume_from_checkpoint="latest"))
    assert resumed.status == "finished" and resumed.step == 6


def test_a_full_disk_names_the_output_folder_and_promises_nothing_unprinted(make_config, events, monkeypatch):
    config = make_config(max_train_steps=2, checkpointing_steps=1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write reports it: no file name

    monkeypatch.setattr(ckpt, "save_file", full)
    result = run_training(config, events)
    assert result.status == "failed"
    failed = events.of(ev.Failed)[-1]
    assert (
        failed.message == f"The disk is full: nothing more can be written to the output folder {config.run.output_dir}."
    )
    assert "Free some disk space" in failed.hint and "below" not in failed.hint
    assert not failed.traceback  # the message is whole; no details to print beside it


def identity_of(config):
    return ckpt.Identity(
        "demo (tiny random Chroma; samples are noise)",
        config.lora.lora_rank,
        config.effective_lora_alpha,
        config.lora.flux_lora_target,
    )


def test_an_unwritable_output_folder_is_named(make_config, events, tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    result = run_training(make_config(output_dir=str(blocker / "run")), events)
    assert result.status == "failed"
    failed = events.of(ev.Failed)[-1]
    assert failed.message.startswith(f"Cannot write to the output folder {blocker / 'run'}")
    assert "output folder you can write to" in failed.hint


def test_checkpoints_are_pruned_to_the_limit(make_config):
    config = make_config(max_train_steps=5, checkpointing_steps=1, checkpoints_total_limit=2)
    run_training(config)
    assert [step for step, _ in RunFolder(config.run.output_dir).checkpoints()] == [4, 5]


def test_a_damaged_checkpoint_is_refused_with_advice(make_config, tmp_path):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    run_training(config)
    damaged = Path(config.run.output_dir) / "checkpoints" / "step_2"
    (damaged / "lora.safetensors").write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="damaged"):
        ckpt.load_checkpoint(damaged, identity_of(config))


def test_sampling_leaves_rng_mode_and_lora_scale_untouched(make_config, events):
    """A run that samples every step has the same losses as one that never samples."""
    plain = []
    run_training(make_config(max_train_steps=4, validation_steps=0), plain.append)
    sampled_run = make_config(
        max_train_steps=4, validation_steps=1, output_dir=str(Path(make_config().run.output_dir).parent / "s")
    )
    run_training(sampled_run, events)
    assert len(events.of(ev.SampleReady)) == 5  # step 0 and after each step
    assert [e.loss for e in events.of(ev.StepLogged)] == [e.loss for e in plain if isinstance(e, ev.StepLogged)]
    index = [
        json.loads(line)
        for line in (Path(sampled_run.run.output_dir) / "samples" / "index.jsonl").read_text().splitlines()
    ]
    assert {r["steps"] for r in index} == {2} and {r["resolution"] for r in index} == {64}


def test_guidance_above_one_renders_with_the_negative_prompt(make_config, events):
    config = make_config(
        max_train_steps=1,
        validation_guidance=3.0,
        validation_negative_prompt="blurry",
        validation_prompt=["a cat", "a dog"],
    )
    assert run_training(config, events).status == "finished"
    samples = events.of(ev.SampleReady)
    assert [(s.step, s.prompt) for s in samples] == [(0, "a cat"), (0, "a dog"), (1, "a cat"), (1, "a dog")]
    index = json.loads((Path(config.run.output_dir) / "samples" / "index.jsonl").read_text().splitlines()[0])
    assert index["negative_prompt"] == "blurry" and index["guidance"] == 3.0


def test_download_progress_becomes_events_and_stops_on_request():
    seen = []
    control = TrainingControl()
    bar = _progress_class(seen.append, "Downloading x/y", control)(total=1000, unit="B")
    bar.update(400)
    bar.update(600)
    assert seen[0] == ev.Progress("Downloading x/y", 400, 1000, "B")
    assert seen[-1] == ev.Progress("Downloading x/y", 1000, 1000, "B")
    control.stop()
    with pytest.raises(Exception, match="cancelled"):
        bar.update(1)


def test_what_a_save_cut_short_left_behind_is_cleared_and_a_swapped_out_copy_put_back(make_config):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    assert run_training(config).status == "finished"
    root = Path(config.run.output_dir) / "checkpoints"
    (root / "step_1").rename(root / ".old.step_1")  # killed in the middle of swapping step 1
    (root / ".step_7.x1y2").mkdir()  # killed while writing step 7
    (root / ".step_7.x1y2" / "lora.safetensors").write_bytes(b"\0" * 1024)
    (root / "step_2").rename(root / ".old.step_2")
    (root / ".step_2.tmp").mkdir()  # and a finished step 2 that is there as well
    (root / ".step_2.tmp" / "lora.safetensors").write_bytes(b"\0")
    shutil.copytree(root / ".old.step_2", root / "step_2")
    RunFolder(config.run.output_dir).sweep_partial_checkpoints()
    assert sorted(p.name for p in root.iterdir()) == ["step_1", "step_2"]
    assert [step for step, _ in RunFolder(config.run.output_dir).checkpoints()] == [1, 2]


def test_a_save_sweeps_first(make_config):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    root = Path(config.run.output_dir) / "checkpoints"
    root.mkdir(parents=True)
    (root / ".step_9.abc").mkdir()
    assert run_training(config).status == "finished"
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
