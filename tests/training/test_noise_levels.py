"""Which noise levels a run trains at: drawn per sample, recorded, and kept across a resume."""

import json
from pathlib import Path

from safetensors import safe_open

from chroma_studio.protocol import events as ev
from chroma_studio.protocol.control import TrainingControl
from chroma_studio.training.data import Example, epoch_batches
from chroma_studio.training.trainer import run_training


def logged_sigmas(log) -> list[float]:
    return [s for e in log if isinstance(e, ev.StepLogged) for s in e.sigma]


def test_samples_are_numbered_by_the_seeded_order_whatever_the_batch_size():
    examples = [Example(Path(f"{i}.png"), "", (64, 64) if i % 3 else (128, 64), repeats=1 + i % 2) for i in range(9)]

    def numbered(batch_size, epoch):
        return sorted(pair for batch in epoch_batches(examples, batch_size, 3, epoch) for pair in batch)

    for epoch in (0, 1):
        assert numbered(1, epoch) == numbered(2, epoch) == numbered(5, epoch)
    samples = sum(e.repeats for e in examples)
    assert sorted(s for _, s in numbered(1, 1)) == list(range(samples, 2 * samples))  # epochs follow each other


def test_a_sample_draws_the_same_sigma_at_batch_1_and_batch_2(make_config, tmp_path):
    one, two = [], []
    common = {"max_train_steps": None, "num_train_epochs": 1, "caption_dropout_probability": 0.5}
    run_training(make_config(output_dir=str(tmp_path / "b1"), train_batch_size=1, **common), one.append)
    run_training(make_config(output_dir=str(tmp_path / "b2"), train_batch_size=2, **common), two.append)
    assert len(logged_sigmas(one)) == 4
    assert sorted(logged_sigmas(one)) == sorted(logged_sigmas(two))
    # and across accumulation: two micro-batches of one draw what one batch of two draws
    accumulated = []
    run_training(
        make_config(output_dir=str(tmp_path / "acc"), gradient_accumulation_steps=2, **common), accumulated.append
    )
    assert sorted(logged_sigmas(accumulated)) == sorted(logged_sigmas(one))


def test_a_run_records_the_distribution_it_trained_with(make_config, events):
    config = make_config(max_train_steps=2, checkpointing_steps=1)
    assert run_training(config, events).status == "finished"
    out = Path(config.run.output_dir)
    assert json.loads((out / "config.json").read_text())["flow_sigma_distribution"] == "chroma"
    assert json.loads((out / "checkpoints" / "step_2" / "state.json").read_text())["sigma_distribution"] == "chroma"
    with safe_open(str(out / "pytorch_lora_weights.safetensors"), "pt") as handle:
        assert json.loads(handle.metadata()["chroma_studio"])["sigma_distribution"] == "chroma"


def test_a_checkpoint_without_a_record_resumes_with_the_simpletuner_map_and_says_so_once(make_config, events):
    """Checkpoints written before the distribution was recorded come from runs that always
    trained with SimpleTuner's tail map: they finish with it."""
    config = make_config(max_train_steps=8, checkpointing_steps=2)
    control = TrainingControl()

    def stop_after_two(event):
        if isinstance(event, ev.StepLogged) and event.step == 2:
            control.stop()

    assert run_training(config, stop_after_two, control).status == "stopped"
    out = Path(config.run.output_dir)
    state_file = out / "checkpoints" / "step_2" / "state.json"
    state = json.loads(state_file.read_text())
    del state["sigma_distribution"]
    state_file.write_text(json.dumps(state))

    assert run_training(config.replace(resume_from_checkpoint="latest"), events).status == "finished"
    said = [e.message for e in events.of(ev.LogMessage) if "noise levels this run began with" in e.message]
    assert len(said) == 1 and "simpletuner" in said[0]
    resumed = logged_sigmas(events)
    assert len(resumed) == 6 and not any(0.25 < s < 0.75 for s in resumed)
    assert json.loads((out / "config.json").read_text())["flow_sigma_distribution"] == "simpletuner"
    assert (
        json.loads((out / "checkpoints" / "step_8" / "state.json").read_text())["sigma_distribution"] == "simpletuner"
    )
