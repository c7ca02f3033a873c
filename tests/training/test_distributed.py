"""Data-parallel training in several processes: gloo, two CPU ranks, the demo model in fp32.

The runs go the way the app and ``chroma-studio train --num-processes 2`` start them:
``run_in_process`` with a training job of ``num_processes`` 2 starts torch's launcher, whose rank
0 speaks for the run. Two processes with batch 1 must train exactly as one process with batch 2.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file
from support import TINY_DEMO, copy_demo_images

from chroma_studio.base.run_folder import LORA_FILE, checkpoint_dirs, read_jsonl
from chroma_studio.config import config_from_dict
from chroma_studio.protocol import events as ev
from chroma_studio.protocol import launch
from chroma_studio.protocol.jobs import TrainJob
from chroma_studio.protocol.remote import RemoteControl, run_in_process
from chroma_studio.training.data import MicroBatch
from chroma_studio.training.data_parallel import rank_share, run_batch
from chroma_studio.training.distributed import World
from chroma_studio.training.trainer import run_training

STEPS = 4

# Every rank runs under this script: it records each write into the run folder (Python's audit
# events: open for writing, mkdir, rename, remove), one line per write, then runs the rank.
AUDITED_RANK = textwrap.dedent(
    """
    import os, sys
    report = open(os.path.join(os.environ["AUDIT_DIR"], "rank%s.txt" % os.environ["RANK"]), "w", buffering=1)
    root = os.path.realpath(os.environ["AUDIT_WATCH"])
    WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"}

    def inside(path):
        try:
            return os.path.realpath(os.fsdecode(path)).startswith(root)
        except TypeError:
            return False

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE)
            paths = [path] if writes else []
        elif event in CHANGES:
            paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
        else:
            return
        if any(inside(p) for p in paths):
            report.write("%s %s\\n" % (event, paths))

    sys.addaudithook(hook)
    from chroma_studio.training import rank
    from chroma_studio.training.child import _exit
    _exit(rank.main())
    """
)


def _config(root: Path, data: Path, name: str, **overrides):
    values = {
        **TINY_DEMO,
        "dataset_dirs": [str(data)],
        "output_dir": str(root / name),
        "cache_dir": str(root / "cache"),
        "validation_steps": 0,
        "max_train_steps": STEPS,
        "checkpointing_steps": 2,
        "train_batch_size": 1,
    }
    values.update(overrides)
    return config_from_dict(values)


def _losses(run: Path) -> list[float]:
    return [record["loss"] for record in read_jsonl(run / "metrics.jsonl")]


def _assert_same_lora(a: Path, b: Path) -> None:
    """Equal within 1e-6 relative (per tensor, in norm): the ranks add their gradients in another
    order than one process does, which moves the last bits of fp32 and nothing more."""
    first, second = load_file(a), load_file(b)
    assert first.keys() == second.keys() and first
    for key in first:
        difference = (first[key] - second[key]).norm() / first[key].norm().clamp_min(1e-12)
        assert difference <= 1e-6, (key, difference.item())


class Log(list):
    def __call__(self, event):
        self.append(event)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with batch 2, and two audited processes with batch 1, on the same data."""
    root = tmp_path_factory.mktemp("distributed")
    data = copy_demo_images(root / "data")
    single = _config(root, data, "single", train_batch_size=2)
    assert run_training(single).status == "finished"
    audit = root / "audit"
    audit.mkdir()
    script = root / "audited_rank.py"
    script.write_text(AUDITED_RANK)
    two = _config(root, data, "two", num_processes=2)
    log = Log()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            launch,
            "launcher_command",
            lambda python, n: [
                python,
                "-m",
                launch.LAUNCHER_MODULE,
                "--standalone",
                f"--nproc-per-node={n}",
                f"--log-dir={os.devnull}",
                str(script),
            ],
        )
        environment = {"AUDIT_DIR": str(audit), "AUDIT_WATCH": two.run.output_dir}
        result = run_in_process(TrainJob(two.to_dict()), log, RemoteControl(), environment)
    return {
        "root": root,
        "data": data,
        "single": Path(single.run.output_dir),
        "two": Path(two.run.output_dir),
        "result": result,
        "events": log,
        "audit": audit,
    }


def test_two_processes_train_as_one_with_twice_the_batch(runs):
    result = runs["result"]
    assert result.status == "finished" and result.step == STEPS, result
    single, two = _losses(runs["single"]), _losses(runs["two"])
    assert len(single) == len(two) == STEPS
    assert two == pytest.approx(single, abs=1e-5)
    # every sample's sigma, in the order of the whole batch: the same draws as one process makes
    sigmas = [r["sigma"] for r in read_jsonl(runs["two"] / "metrics.jsonl")]
    assert sigmas == [r["sigma"] for r in read_jsonl(runs["single"] / "metrics.jsonl")]
    assert all(len(s) == 2 for s in sigmas)
    _assert_same_lora(runs["single"] / LORA_FILE, runs["two"] / LORA_FILE)
    state = json.loads((runs["two"] / "checkpoints" / f"step_{STEPS}" / "state.json").read_text())
    assert state["num_processes"] == 2 and state["global_batch_size"] == 2
    # rank 0 spoke for the run: one plan, one event per step, one end
    steps = runs["events"].of(ev.StepLogged)
    assert [e.step for e in steps] == list(range(1, STEPS + 1))
    assert len(runs["events"].of(ev.RunPlanned)) == 1 and len(runs["events"].of(ev.Finished)) == 1


def test_only_rank_0_writes_into_the_run_folder(runs):
    rank0 = (runs["audit"] / "rank0.txt").read_text().splitlines()
    rank1 = (runs["audit"] / "rank1.txt").read_text()
    assert rank1 == ""
    written = " ".join(rank0)  # the audit sees rank 0 write what the run folder holds
    for name in ("metrics.jsonl", "log.txt", "config.json", LORA_FILE, "checkpoints"):
        assert name in written, name
    log = (runs["two"] / "log.txt").read_text()
    assert log.count("Reading the dataset") == 1  # one log, not one per rank


def _stop_after(control: RemoteControl, step: int, log: Log):
    def sink(event):
        log(event)
        if isinstance(event, ev.StepLogged) and event.step == step:
            control.stop()

    return sink


@pytest.mark.slow
def test_a_stopped_run_resumes_with_two_processes_and_onto_one(runs):
    root, data = runs["root"], runs["data"]
    config = _config(root, data, "stopped", num_processes=2, max_train_steps=STEPS)
    control, log = RemoteControl(), Log()
    result = run_in_process(TrainJob(config.to_dict()), _stop_after(control, 1, log), control)
    assert result.status == "stopped" and 1 <= result.step < STEPS, result
    stopped = Path(config.run.output_dir)
    assert checkpoint_dirs(stopped)[-1][0] == result.step
    onto_one = root / "onto-one"
    shutil.copytree(stopped, onto_one)

    resumed = run_in_process(
        TrainJob(config.replace(resume_from_checkpoint="latest").to_dict()), Log(), RemoteControl()
    )
    assert resumed.status == "finished" and resumed.step == STEPS
    assert _losses(stopped) == pytest.approx(_losses(runs["single"]), abs=1e-5)
    _assert_same_lora(runs["single"] / LORA_FILE, stopped / LORA_FILE)

    # Onto one process: the run keeps its batch of 2, and continues as it began.
    one = config.replace(output_dir=str(onto_one), num_processes=1, resume_from_checkpoint="latest")
    log = Log()
    assert run_training(one, log).status == "finished"
    notes = [e.message for e in log.of(ev.LogMessage)]
    assert any("keeps its batch of 2 samples" in note for note in notes), notes
    assert _losses(onto_one) == pytest.approx(_losses(runs["single"]), abs=1e-5)
    _assert_same_lora(runs["single"] / LORA_FILE, onto_one / LORA_FILE)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _rank_process(launcher: psutil.Process, rank: int) -> psutil.Process | None:
    for child in launcher.children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and launch.RANK_MODULE in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_naming_it_and_the_run_resumes(runs):
    root, data = runs["root"], runs["data"]
    config = _config(root, data, "killed", num_processes=2, max_train_steps=400, checkpointing_steps=2)
    control, log, killed = RemoteControl(), Log(), {}

    def sink(event):
        log(event)
        # First pause, and while paused ask for a checkpoint and a sample: they reach every rank.
        if isinstance(event, ev.StepLogged) and event.step == 1:
            control.pause()
        elif isinstance(event, ev.PhaseChanged) and event.phase == "paused":
            control.request_save()
            control.request_sample()
            control.resume()
        elif isinstance(event, ev.StepLogged) and log.of(ev.SampleReady)[1:] and not killed:
            launcher = psutil.Process(control._process.pid)
            victim = _rank_process(launcher, 1)
            assert victim is not None
            killed["at"] = time.monotonic()
            killed["pids"] = [p.pid for p in launcher.children(recursive=True)] + [launcher.pid]
            victim.kill()

    result = run_in_process(TrainJob(config.to_dict()), sink, control)
    ended = time.monotonic() - killed["at"]
    assert [e.phase for e in log.of(ev.PhaseChanged)].count("paused") == 1
    asked = log.of(ev.SampleReady)[1].step
    assert asked >= 1 and asked in [e.step for e in log.of(ev.CheckpointSaved)]
    assert result.status == "failed", result
    assert "rank 1 of 2" in result.failure.message and "killed" in result.failure.message
    assert "Resume" in result.failure.hint
    assert ended < 60, ended  # the launcher ended the others
    assert not [pid for pid in killed["pids"] if _alive(pid)]

    out = Path(config.run.output_dir)
    saved = checkpoint_dirs(out)
    assert saved and all((path / "state.json").is_file() for _, path in saved)  # nothing half-written
    assert not (out / LORA_FILE).exists()
    assert not [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]

    resumed = config.replace(resume_from_checkpoint="latest", max_train_steps=saved[-1][0] + 1)
    result = run_in_process(TrainJob(resumed.to_dict()), Log(), RemoteControl())
    assert result.status == "finished" and result.step == saved[-1][0] + 1
    assert (out / LORA_FILE).is_file()


# -- the pieces, without processes -------------------------------------------------------------------


def test_each_rank_takes_its_share_and_a_rank_without_one_adds_nothing():
    world = [World(rank, 2, rank, torch.device("cpu")) for rank in range(2)]
    batch = MicroBatch(0, [5, 6, 7], [10, 11, 12])
    shares = [rank_share(batch, w) for w in world]
    assert shares[0] == (MicroBatch(0, [5, 7], [10, 12]), pytest.approx(2 / 3))
    assert shares[1] == (MicroBatch(0, [6], [11]), pytest.approx(1 / 3))
    short = MicroBatch(1, [3], [40])
    assert rank_share(short, world[1]) == (MicroBatch(1, [3], [40]), 0.0)  # runs, weighs nothing


def test_a_resume_onto_another_number_of_processes_keeps_the_runs_batch():
    two = World(0, 2, 0, torch.device("cpu"))
    assert run_batch(2, two, None) == (4, None)
    assert run_batch(2, two, {"num_processes": 2, "global_batch_size": 4}) == (4, None)
    batch, note = run_batch(2, None, {"num_processes": 2, "global_batch_size": 4})
    assert batch == 4 and "keeps its batch of 4" in note and "up to 4" in note
    batch, note = run_batch(1, two, {})  # a checkpoint from before: one process, its batch
    assert (batch, note) == (2, None)
    assert run_batch(3, two, {"num_processes": 1})[0] == 3


def test_one_process_refuses_a_config_of_several(make_config, events):
    result = run_training(make_config(num_processes=2), events)
    assert result.status == "failed"
    assert "--num-processes" in result.failure.hint
    assert not Path(make_config().run.output_dir).exists()


def test_block_streaming_with_several_processes_is_refused_by_the_settings(make_config):
    problems = make_config(num_processes=2, blocks_to_swap=4).validate()
    assert any(p.key == "num_processes" and "blocks_to_swap" in p.message for p in problems)
    assert not any(p.key == "num_processes" for p in make_config(num_processes=2).validate())


REPORT = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
======================================================
chroma_studio.training.rank FAILED
------------------------------------------------------
Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 8609)  (SIGTERM)
------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-06_07:49:08
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 8610)  (SIGKILL)
======================================================"""


def test_the_launchers_report_names_the_rank_that_failed_first():
    tail = REPORT.splitlines()
    assert launch.failed_rank(tail) == (1, -9)
    failure = launch.describe_rank_exit(tail, 2, checkpoint_kept=True)
    assert "rank 1 of 2 was killed (SIGKILL)" in failure.message and failure.topic == "memory"
    assert "Resume continues" in failure.hint
    crashed = launch.describe_rank_exit([line.replace("-9 (pid", "1 (pid") for line in tail], 2, False)
    assert "rank 1 of 2 failed (exit code 1)" in crashed.message and "Resume" not in crashed.hint
    unknown = launch.describe_rank_exit(["something else"], 3, False)
    assert "One of the 3 training processes" in unknown.message


def test_the_launch_command_starts_one_rank_per_process():
    assert launch.processes_of({"num_processes": 3}) == 3
    assert launch.processes_of({"num_processes": 1}) == launch.processes_of({}) == 1
    command = launch.launcher_command(sys.executable, 2)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in command and command[-2:] == ["-m", "chroma_studio.training.rank"]


def test_the_command_line_takes_the_number_of_processes(make_config, tmp_path, capsys):
    from chroma_studio.cli import main
    from chroma_studio.config import save_config

    path = tmp_path / "config.json"
    save_config(make_config(), path)
    assert main(["train", str(path), "--num-processes", "0", "--dry-run"]) == 2
    assert "num_processes" in capsys.readouterr().err
    assert main(["train", str(path), "--num-processes", "2", "--dry-run"]) == 0


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_stops_every_process_with_a_checkpoint(runs, tmp_path):
    import signal
    import subprocess

    from chroma_studio.config import save_config

    config = _config(runs["root"], runs["data"], "ctrl-c", max_train_steps=400)
    path = tmp_path / "config.json"
    save_config(config, path)
    command = [sys.executable, "-m", "chroma_studio", "train", str(path), "--num-processes", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = Path(config.run.output_dir) / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    launcher = [p for p in psutil.Process(process.pid).children() if launch.LAUNCHER_MODULE in " ".join(p.cmdline())]
    ranks = [p.pid for p in launcher[0].children(recursive=True)]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--num-processes 2 --resume" in out
    saved = checkpoint_dirs(Path(config.run.output_dir))
    assert saved and saved[-1][0] == len(_losses(Path(config.run.output_dir)))
    assert (Path(config.run.output_dir) / LORA_FILE).is_file()
    assert not [pid for pid in [launcher[0].pid, *ranks] if _alive(pid)]


def test_ddp_sees_the_trainable_parameters_alone():
    import torch.distributed as dist

    from chroma_studio.training.data_parallel import gradient_sync

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    lora = model[2].bias.requires_grad_(True)  # stands in for the LoRA
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    try:
        wrapped = gradient_sync(model, World(0, 1, 0, torch.device("cpu")))
        assert [p for p in wrapped.module.parameters()] == [lora] and not list(wrapped.module.buffers())
        inputs = torch.randn(3, 4)
        output = wrapped(inputs)
        assert torch.equal(output, model(inputs))
        output.sum().backward()
        assert lora.grad is not None and model[0].weight.grad is None
    finally:
        dist.destroy_process_group()


def test_a_device_that_cannot_run_several_processes_is_refused_with_a_message(make_config, events):
    # Apple's MPS is one device: forced here, every rank refuses, and rank 0 says why.
    config = make_config(num_processes=2)
    result = run_in_process(TrainJob(config.to_dict()), events, RemoteControl(), {"CHROMA_STUDIO_DEVICE": "mps"})
    assert result is None
    failure = events.of(ev.Failed)[-1]
    assert "cannot share a mps device" in failure.message and "num_processes to 1" in failure.hint
    assert not Path(config.run.output_dir).exists()
