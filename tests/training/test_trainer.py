"""Whole runs of the engine on the demo model (tiny real Chroma components) on the CPU."""

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from chroma_studio.base.run_folder import LORA_FILE
from chroma_studio.protocol import events as ev
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.training.trainer import run_training


def losses(log):
    return [e.loss for e in log.of(ev.StepLogged)]


def test_a_demo_run_writes_everything_a_run_leaves(make_config, events):
    config = make_config(max_train_steps=4, validation_steps=2, checkpointing_steps=2, trigger_word="sks")
    result = run_training(config, events)
    assert result.status == "finished", result.failure
    out = Path(config.run.output_dir)

    steps = events.of(ev.StepLogged)
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert all(e.total_steps == 4 and e.loss > 0 and len(e.sigma) == 1 for e in steps)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert lines[0]["loss"] == pytest.approx(steps[0].loss) and "sigma" in lines[0] and "lr" in lines[0]

    samples = events.of(ev.SampleReady)
    assert [s.step for s in samples] == [0, 2, 4]
    assert all((out / "samples" / f"step_{s.step:06d}_p0.png").is_file() for s in samples)
    index = [json.loads(line) for line in (out / "samples" / "index.jsonl").read_text().splitlines()]
    assert [r["step"] for r in index] == [0, 2, 4] and index[0]["seed"] == 42

    assert [c.step for c in events.of(ev.CheckpointSaved)] == [2, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_2", "step_4"]
    assert json.loads((out / "config.json").read_text())["model_flavour"] == "demo"
    log = (out / "log.txt").read_text().splitlines()  # what the app's log panel showed, stamped
    assert [line.split("  ", 1)[1] for line in log][-3:] == [
        f"Checkpoint saved at step 2: {out / 'checkpoints' / 'step_2'}",
        f"Checkpoint saved at step 4: {out / 'checkpoints' / 'step_4'}",
        "Finished at step 4.",
    ]
    assert any("Training 4 steps on 4 images" in line for line in log)
    assert not (out / ".chroma-studio.lock").exists()

    finished = events.of(ev.Finished)[-1]
    assert finished.lora_path == str(out / LORA_FILE) and not finished.stopped
    with safe_open(finished.lora_path, "pt") as f:
        keys = set(f.keys())
        meta = f.metadata()
    modules = {k.rsplit(".lora_A.", 1)[0] for k in keys if ".lora_A." in k}
    assert modules and all(m.startswith("transformer.") for m in modules)
    assert all(f"{m}.alpha" in keys and f"{m}.lora_B.weight" in keys for m in modules)
    assert json.loads(meta["chroma_studio"])["trigger_word"] == "sks"
    assert json.loads(meta["chroma_studio"])["adapter"]["r"] == 4
    assert "lora_adapter_metadata" not in meta  # diffusers refuses it beside .alpha tensors


def test_the_same_seed_gives_the_same_losses(make_config, tmp_path, events):
    run_training(make_config(), events)
    again = type(events)()
    run_training(make_config(output_dir=str(tmp_path / "again")), again)
    assert losses(events) == losses(again)


def test_caches_are_reused_across_epochs_and_runs(make_config, tmp_path, monkeypatch):
    from diffusers import AutoencoderKL
    from transformers import T5EncoderModel

    calls = {"t5": 0, "vae": 0}
    t5_forward, vae_encode = T5EncoderModel.forward, AutoencoderKL.encode

    def counting_forward(self, *args, **kwargs):
        calls["t5"] += 1
        return t5_forward(self, *args, **kwargs)

    def counting_encode(self, *args, **kwargs):
        calls["vae"] += 1
        return vae_encode(self, *args, **kwargs)

    monkeypatch.setattr(T5EncoderModel, "forward", counting_forward)
    monkeypatch.setattr(AutoencoderKL, "encode", counting_encode)

    result = run_training(make_config(max_train_steps=12))  # three epochs of four images
    assert result.status == "finished"
    assert calls == {"t5": 1, "vae": 4}  # one T5 batch of four captions, one VAE call per image

    result = run_training(make_config(output_dir=str(tmp_path / "second")))
    assert result.status == "finished"
    assert calls == {"t5": 1, "vae": 4}  # nothing encoded again


def test_stop_saves_a_checkpoint_and_the_lora(make_config, events):
    control = TrainingControl()

    def sink(event):
        events(event)
        if isinstance(event, ev.StepLogged) and event.step == 2:
            control.stop()

    result = run_training(make_config(max_train_steps=50), sink, control)
    assert result.status == "stopped" and result.step == 2
    assert [c.step for c in events.of(ev.CheckpointSaved)] == [2]
    assert events.of(ev.Finished)[-1].stopped


def test_pause_blocks_until_resumed_and_requests_are_served_at_the_next_step(make_config, events):
    control = TrainingControl()
    paused_at = threading.Event()

    def sink(event):
        events(event)
        if isinstance(event, ev.StepLogged) and event.step == 1:
            control.pause()
            control.request_sample()
            control.request_save()
        if isinstance(event, ev.PhaseChanged) and event.phase == "paused":
            paused_at.set()

    worker = threading.Thread(target=lambda: run_training(make_config(max_train_steps=3), sink, control))
    worker.start()
    assert paused_at.wait(60)
    assert [e.step for e in events.of(ev.StepLogged)] == [1]
    control.resume()
    worker.join(60)
    assert [e.step for e in events.of(ev.StepLogged)] == [1, 2, 3]
    assert [s.step for s in events.of(ev.SampleReady)] == [0, 2, 3]
    assert [c.step for c in events.of(ev.CheckpointSaved)] == [2, 3]


def test_resume_continues_exactly(make_config, tmp_path):
    full_log = []
    run_training(
        make_config(max_train_steps=6, output_dir=str(tmp_path / "full"), lr_warmup_steps=2, lr_scheduler="cosine"),
        full_log.append,
    )
    first, second = [], []
    cut = make_config(max_train_steps=6, output_dir=str(tmp_path / "cut"), lr_warmup_steps=2, lr_scheduler="cosine")
    control = TrainingControl()

    def stop_after_three(event):
        first.append(event)
        if isinstance(event, ev.StepLogged) and event.step == 3:
            control.stop()

    assert run_training(cut, stop_after_three, control).status == "stopped"
    resumed = run_training(cut.replace(resume_from_checkpoint="latest"), second.append)
    assert resumed.status == "finished" and resumed.step == 6

    def step_losses(log):
        return [(e.step, e.loss, e.lr) for e in log if isinstance(e, ev.StepLogged)]

    assert step_losses(first) + step_losses(second) == step_losses(full_log)
    metrics = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]


def test_resume_with_another_rank_is_refused(make_config, events):
    run_training(make_config(max_train_steps=2))
    result = run_training(make_config(max_train_steps=4, lora_rank=8, resume_from_checkpoint="latest"), events)
    assert result.status == "failed"
    assert "lora_rank was 4, now 8" in result.failure.message


def test_a_fresh_run_refuses_a_folder_with_checkpoints(make_config):
    run_training(make_config(max_train_steps=1))
    result = run_training(make_config(max_train_steps=1))
    assert result.status == "failed" and "--resume" in result.failure.hint


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("missing", "Image folder not found"),
        ("empty", "No usable images"),
    ],
)
def test_bad_datasets_fail_with_a_message_naming_the_folder(make_config, tmp_path, events, change, words):
    folder = tmp_path / "nothing-here"
    if change == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("not an image")
    result = run_training(make_config(dataset_dirs=[str(folder)]), events)
    assert result.status == "failed"
    failed = events.of(ev.Failed)[-1]
    assert words in failed.message and str(folder) in failed.message and failed.hint


def test_gradient_accumulation_and_batches_train(make_config, events):
    result = run_training(make_config(max_train_steps=2, train_batch_size=2, gradient_accumulation_steps=2), events)
    assert result.status == "finished"
    assert [len(e.sigma) for e in events.of(ev.StepLogged)] == [4, 4]


def test_bf16_with_checkpointing_and_caption_dropout_runs_on_cpu(make_config, events):
    config = make_config(
        max_train_steps=2,
        mixed_precision="bf16",
        gradient_checkpointing=True,
        caption_dropout_probability=0.5,
        base_model_precision="int8-quanto",
    )
    result = run_training(config, events)
    assert result.status == "finished", result.failure
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in events.of(ev.StepLogged))


def test_a_stop_during_a_sample_pass_abandons_it(make_config, events):
    control = TrainingControl()

    def sink(event):
        events(event)
        if isinstance(event, ev.PhaseChanged) and event.phase == "sampling" and "step 2" in event.detail:
            control.stop()

    config = make_config(max_train_steps=10, validation_steps=2, validation_num_inference_steps=50)
    result = run_training(config, sink, control)
    assert result.status == "stopped" and result.step == 2
    assert [s.step for s in events.of(ev.SampleReady)] == [0]  # the interrupted image is not written
    assert not (Path(config.run.output_dir) / "samples" / "step_000002_p0.png").exists()


def test_logged_learning_rate_is_the_one_the_step_used(make_config, events):
    run_training(make_config(max_train_steps=3, lr_warmup_steps=2, learning_rate=3e-3), events)
    assert [round(e.lr, 6) for e in events.of(ev.StepLogged)] == [0.001, 0.002, 0.003]


def test_an_unreadable_image_is_reported_and_left_out(make_config, small_dataset, events):
    damaged = small_dataset / "rocket.jpg"
    damaged.write_bytes(damaged.read_bytes()[:3000])  # the header reads; the pixels do not
    result = run_training(make_config(max_train_steps=3), events)
    assert result.status == "finished"
    warnings = [e.message for e in events.of(ev.LogMessage) if e.level == "warning"]
    assert any(str(damaged) in w and "training goes on without it" in w for w in warnings)
    assert events.of(ev.RunPlanned)[0].images == 3


def test_a_file_deleted_after_the_scan_is_left_out_with_a_warning(make_config, small_dataset, events):
    gone = small_dataset / "rocket.jpg"

    def sink(event):
        events(event)
        if isinstance(event, ev.PhaseChanged) and event.phase == "caching":
            gone.unlink()  # after the dataset was read, before its images are encoded

    result = run_training(make_config(max_train_steps=3), sink)
    assert result.status == "finished", result.failure
    warnings = [e.message for e in events.of(ev.LogMessage) if e.level == "warning"]
    assert any(str(gone) in w and "training goes on without it" in w for w in warnings)
    assert events.of(ev.RunPlanned)[0].images == 3


@pytest.mark.parametrize(
    ("phase", "detail"),
    [("loading", "Reading the dataset"), ("loading", "Loading the transformer"), ("sampling", "Samples at step 0")],
)
def test_a_stop_before_the_first_step_ends_the_run_with_nothing_written(make_config, events, phase, detail):
    config = make_config(max_train_steps=5, validation_steps=2)
    control = TrainingControl()

    def sink(event):
        events(event)
        if isinstance(event, ev.PhaseChanged) and (event.phase, event.detail) == (phase, detail):
            control.stop()

    result = run_training(config, sink, control)
    assert result.status == "stopped" and result.step == 0
    out = Path(config.run.output_dir)
    assert not (out / "checkpoints").exists() and not list(out.glob("*.safetensors"))
    assert not events.of(ev.StepLogged) and not events.of(ev.CheckpointSaved)
    assert phase == "sampling" or not events.of(ev.SampleReady)  # the step-0 sample comes after loading
    finished = events.of(ev.Finished)[-1]
    assert finished.stopped and finished.lora_path is None
    messages = [e.message for e in events.of(ev.LogMessage)]
    assert "Stopped before the first step: no checkpoint or LoRA was written." in messages
    assert "Stopped before the first step" in (out / "log.txt").read_text()
