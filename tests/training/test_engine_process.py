"""The engine in its own process, as the app runs it: events, commands, and a process that dies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import engine_processes

from chroma_studio.base.run_folder import checkpoint_dirs
from chroma_studio.protocol import events as ev
from chroma_studio.protocol import remote
from chroma_studio.protocol.jobs import ExportFormat, ExportJob, TrainJob
from chroma_studio.protocol.remote import RemoteControl, child_command, describe_exit, run_in_process

pytestmark = pytest.mark.slow  # whole runs in the engine process

RUN_STEPS = 400  # far more than any test waits for: each one stops the run itself


def test_a_run_in_its_own_process_sends_the_same_events_and_obeys_every_command(make_config, events):
    config = make_config(max_train_steps=RUN_STEPS)
    control = RemoteControl()
    control.pause()  # given before the process exists: it must still arrive

    def sink(event):
        events(event)
        if isinstance(event, ev.PhaseChanged) and event.phase == "paused":
            control.request_save()
            control.resume()
        elif isinstance(event, ev.StepLogged) and event.step == 2:
            control.request_sample()
        elif isinstance(event, ev.SampleReady) and event.step > 0:
            control.stop()

    result = run_in_process(TrainJob(config.to_dict()), sink, control)

    # The process runs on while commands travel, so "after step N" means at the next step boundary.
    assert isinstance(result, ev.RunResult) and result.status == "stopped" and result.step >= 2
    last = result.step
    steps = events.of(ev.StepLogged)
    assert [e.step for e in steps] == list(range(1, last + 1))
    assert all(isinstance(e.sigma, tuple) and len(e.sigma) == 1 for e in steps)
    assert [e.phase for e in events.of(ev.PhaseChanged)].count("paused") == 1
    # "save now" given while paused is served after the first step; the stop saves the last one
    assert [c.step for c in events.of(ev.CheckpointSaved)] == [1, last]
    first, asked = events.of(ev.SampleReady)  # the run's samples at step 0, then the one asked for
    assert first.step == 0 and 2 <= asked.step <= last and Path(asked.path).is_file()
    finished = events.of(ev.Finished)[-1]
    assert finished.stopped and finished.step == last and Path(finished.lora_path).is_file()
    out = Path(config.run.output_dir)
    assert (out / "checkpoints" / f"step_{last}").is_dir()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == last
    assert not engine_processes()


@pytest.mark.skipif(sys.platform == "win32", reason="a killed process exits with code 1 on Windows")
def test_a_run_killed_by_the_system_ends_with_a_failure_that_says_so(make_config, events):
    config = make_config(max_train_steps=RUN_STEPS, checkpointing_steps=2)

    def sink(event):
        events(event)
        if isinstance(event, ev.CheckpointSaved):
            for child in engine_processes():
                child.kill()  # SIGKILL, as the out-of-memory killer sends

    result = run_in_process(TrainJob(config.to_dict()), sink)

    assert result.status == "failed" and result.step >= 2
    failure = events.of(ev.Failed)[-1]
    assert result.failure == failure
    assert "stopped by the system" in failure.message and "out of memory" in failure.message
    assert "lower resolution" in failure.hint
    assert "Resume continues from it" in failure.hint  # a checkpoint was saved before the kill
    assert not events.of(ev.Finished)
    assert not engine_processes()


def test_a_resumed_run_killed_before_its_first_new_checkpoint_still_offers_resume(make_config, events):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    assert run_in_process(TrainJob(config.to_dict()), lambda e: None).status == "finished"
    again = make_config(max_train_steps=RUN_STEPS, resume_from_checkpoint="latest")

    def sink(event):
        events(event)
        if isinstance(event, ev.PhaseChanged) and event.phase == "caching":
            for child in engine_processes():
                child.kill()

    result = run_in_process(TrainJob(again.to_dict()), sink)
    assert result.status == "failed" and not events.of(ev.CheckpointSaved)
    assert "Resume continues from it" in events.of(ev.Failed)[-1].hint  # the checkpoints on disk count


def test_a_run_ended_by_the_app_is_stopped_not_failed(make_config, events):
    config = make_config(max_train_steps=RUN_STEPS)
    control = RemoteControl()

    def sink(event):
        events(event)
        if isinstance(event, ev.StepLogged) and event.step == 2:
            control.kill()

    result = run_in_process(TrainJob(config.to_dict()), sink, control)
    assert result.status == "stopped" and 2 <= result.step < RUN_STEPS
    assert not events.of(ev.Failed)
    assert events.of(ev.Finished)[-1].stopped
    assert not engine_processes()


def test_when_the_app_goes_away_the_process_stops_with_a_checkpoint(make_config):
    config = make_config(max_train_steps=RUN_STEPS)
    pipe = subprocess.PIPE
    process = subprocess.Popen(child_command(), stdin=pipe, stdout=pipe, stderr=pipe)
    process.stdin.write(json.dumps(TrainJob(config.to_dict()).to_message()).encode() + b"\n")
    process.stdin.flush()
    for line in process.stdout:
        if json.loads(line)["type"] == "StepLogged":
            break
    for stream in (process.stdin, process.stdout, process.stderr):
        stream.close()  # as when the window's process is killed: nobody writes to it or reads from it
    assert process.wait(timeout=120) == 0
    saved = checkpoint_dirs(config.run.output_dir)
    assert saved and 1 <= saved[-1][0] < RUN_STEPS
    assert (Path(config.run.output_dir) / "pytorch_lora_weights.safetensors").is_file()


def test_a_child_that_dies_after_saying_how_it_ended_is_taken_at_its_word(monkeypatch, tmp_path, events):
    finished = ev.Finished(5, str(tmp_path), str(tmp_path / "lora.safetensors"))
    script = tmp_path / "dies.py"
    script.write_text(
        "import json, os, sys\n"
        "sys.stdin.readline()\n"
        f"print({json.dumps(json.dumps(ev.to_message(finished)))}, flush=True)\n"
        "os._exit(3)\n"
    )
    monkeypatch.setattr(remote, "child_command", lambda: [sys.executable, str(script)])
    result = run_in_process(TrainJob({"output_dir": str(tmp_path)}), events)
    assert result == ev.RunResult("finished", 5, str(tmp_path), finished.lora_path)
    assert events == [finished]  # no failure added after the fact


def test_a_child_that_lingers_after_its_result_does_not_hold_the_caller(monkeypatch, tmp_path):
    script = tmp_path / "lingers.py"
    script.write_text(
        "import json, sys, time\n"
        "sys.stdin.readline()\n"
        "print(json.dumps({'type': 'Result', 'value': 'done'}), flush=True)\n"
        "time.sleep(60)\n"
    )
    monkeypatch.setattr(remote, "child_command", lambda: [sys.executable, str(script)])
    monkeypatch.setattr(remote, "EXIT_WAIT_S", 1)
    started = time.monotonic()
    assert run_in_process(ExportJob(str(tmp_path)), lambda e: None) == "done"
    assert time.monotonic() - started < 20


def test_a_failed_export_reports_the_engines_message_and_hint(tmp_path, events):
    run_dir = tmp_path / "not-a-run"
    run_dir.mkdir()
    result = run_in_process(ExportJob(str(run_dir)), events)
    assert result is None
    (failure,) = events.of(ev.Failed)
    assert str(run_dir) in failure.message and "has no checkpoints" in failure.message
    assert not failure.traceback  # a plain user error, not a crash


def test_an_export_in_its_own_process_returns_the_written_file(make_config):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    assert run_in_process(TrainJob(config.to_dict()), lambda e: None).status == "finished"
    written = run_in_process(ExportJob(config.run.output_dir, 1, ExportFormat.KOHYA), lambda e: None)
    assert Path(written).is_file() and Path(written).parent == Path(config.run.output_dir)
    assert Path(written).name == "chroma_lora_kohya_step_1.safetensors"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (-9, "out of memory"),
        (0xC0000017, "out of memory"),
        (-11, "crashed inside a native library"),
        (-6, "crashed inside a native library"),
        (0xC0000005, "crashed inside a native library"),
        (-1073741819, "crashed inside a native library"),  # the same status, read as signed
        (0xC0000409, "crashed inside a native library"),
        (3, "exit code 3"),
    ],
)
def test_describe_exit_names_the_likely_cause(code, words):
    failure = describe_exit(code, ["last line of output"], training=True, checkpoint_kept=False)
    assert words in failure.message + failure.hint
    assert failure.traceback == "last line of output"
    assert "Resume" not in failure.hint
    assert "Resume continues" in describe_exit(code, [], training=True, checkpoint_kept=True).hint


def test_describe_exit_gives_training_advice_only_for_training():
    train = describe_exit(-9, [], training=True)
    download = describe_exit(-9, [], training=False)
    assert "training process" in train.message and "quantization" in train.hint
    assert "background process" in download.message and "quantization" not in download.hint
