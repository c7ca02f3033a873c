"""The run view-model: events in, history and state out; a run folder read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chroma_studio.gui.run_model import LossSeries, RunModel
from chroma_studio.protocol import events as ev


def test_loss_series_grows_in_float64_and_smooths():
    series = LossSeries(capacity=4)
    for step in range(1, 1001):
        series.append(step, 1.0 if step % 2 else 3.0)
    assert len(series) == 1000
    assert series.steps.dtype == np.float64
    assert series.steps[0] == 1 and series.steps[-1] == 1000
    assert series.smoothed[0] == pytest.approx(1.0)  # bias-corrected: the first average is the first loss
    assert series.smoothed[-1] == pytest.approx(2.0, abs=0.1)


def test_loss_series_skips_non_finite_values_in_the_average():
    series = LossSeries()
    series.extend([1, 2, 3], [1.0, float("nan"), 1.0])
    assert np.isnan(series.loss[1])
    assert series.smoothed[2] == pytest.approx(1.0)


def test_events_drive_status_history_and_signals(qtbot):
    model = RunModel()
    model.set_status("starting")
    with qtbot.waitSignal(model.status_changed, check_params_cb=lambda s: s == "running"):
        model.apply(ev.PhaseChanged("training", "Step 0 of 3"))
    model.apply(ev.RunPlanned(3, 0, 4, 4, 1000, 10))
    with qtbot.waitSignals([model.steps_added] * 3):
        for step in (1, 2, 3):
            model.apply(ev.StepLogged(step, 3, 1.0 / step, 1e-4, (0.5,), 0.1))
    assert model.step == 3 and model.total_steps == 3
    assert list(model.series.steps) == [1.0, 2.0, 3.0]
    with qtbot.waitSignal(model.sample_added) as sample:
        model.apply(ev.SampleReady(3, "a photo of sks", "/tmp/x.png", 42, 0))
    assert sample.args[0].step == 3
    model.apply(ev.PhaseChanged("paused", "Paused at step 3"))
    assert model.status == "paused"
    model.apply(ev.PhaseChanged("training", "Step 3"))
    assert model.status == "running"
    with qtbot.waitSignal(model.run_finished):
        model.apply(ev.Finished(3, "/tmp/run", "/tmp/run/lora.safetensors", files=("/tmp/run/lora.safetensors",)))
    assert model.status == "finished"
    assert model.lora_files == ["/tmp/run/lora.safetensors"]


def test_a_failure_is_kept_and_announced(qtbot):
    model = RunModel()
    model.set_status("starting")
    with qtbot.waitSignal(model.run_failed) as failed:
        model.apply(ev.Failed("No usable images in /x.", "Check the dataset folders, then start again."))
    assert model.status == "failed"
    assert failed.args[0].hint.startswith("Check the dataset")


def test_rate_and_eta_come_from_step_times():
    model = RunModel()
    model.total_steps = 100
    model._times.extend([(10.0, 10), (20.0, 30)])
    model.step = 30
    assert model.steps_per_second() == pytest.approx(2.0)
    assert model.eta_seconds() == pytest.approx(35.0)


def test_load_folder_reads_metrics_samples_checkpoints_and_lora(tmp_path, qtbot):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints" / "step_2").mkdir(parents=True)
    (run / "checkpoints" / "step_2" / "state.json").write_text("{}")
    (run / "config.json").write_text(json.dumps({"max_train_steps": 4}))
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-4, "sigma": [0.5], "seconds": 0.1}) for s in (1, 2, 3, 4)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "lo')  # the last line cut by a crash
    (run / "samples" / "step_000004_p0.png").write_bytes(b"png")
    (run / "samples" / "index.jsonl").write_text(
        json.dumps({"step": 4, "prompt_index": 0, "prompt": "sks", "file": "step_000004_p0.png"}) + "\n"
    )
    (run / "pytorch_lora_weights.safetensors").write_bytes(b"x")
    model = RunModel()
    with qtbot.waitSignal(model.run_finished):
        model.load_folder(run)
    assert model.reopened and model.status == "finished"
    assert list(model.series.steps) == [1.0, 2.0, 3.0, 4.0]
    assert [s.step for s in model.samples] == [4]
    assert model.checkpoints == [(2, str(run / "checkpoints" / "step_2"))]
    assert model.lora_files == [str(run / "pytorch_lora_weights.safetensors")]


def test_load_folder_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        RunModel().load_folder(tmp_path)


def test_a_reopened_run_ends_with_a_real_finished_event(tmp_path, qtbot):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"max_train_steps": 10}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 3, "loss": 0.5, "lr": 1e-4, "sigma": [0.5], "seconds": 0.1}))
    model = RunModel()
    with qtbot.waitSignal(model.run_finished) as finished:
        model.load_folder(run)
    assert finished.args == [ev.Finished(3, str(run), None, stopped=True)]
    assert type(model.result) is ev.Finished and model.result == finished.args[0]
    assert model.status is ev.RunStatus.STOPPED and model.phase is ev.Phase.FINISHED


def test_status_is_a_closed_set_and_its_signal_carries_the_name(qtbot):
    model = RunModel()
    assert model.status is ev.RunStatus.IDLE and not model.active
    with qtbot.waitSignal(model.status_changed) as changed:
        model.set_status("starting")
    assert changed.args == ["starting"] and model.status is ev.RunStatus.STARTING and model.active
    with pytest.raises(ValueError, match="'done' is not a valid RunStatus"):
        model.set_status("done")
