"""Engine events cross from the engine process to the window as JSON lines and come back equal."""

from __future__ import annotations

import json

import pytest

from chroma_studio.protocol import events as ev

EXAMPLES = [
    ev.PhaseChanged("training", "Step 3 of 10"),
    ev.Progress("Downloading transformer", 512, 1024, "B"),
    ev.RunPlanned(10, 0, 4, 4, 5632, 22),
    ev.StepLogged(3, 10, 0.125, 1e-4, (0.25, 0.75), 0.5, epoch=1),
    ev.SampleReady(2, "a photo of sks, «café» ☕", "/runs/a b/samples/step_000002_p0.png", 42, 1),
    ev.CheckpointSaved(4, "/runs/x/checkpoints/step_4"),
    ev.MemoryReport("cuda:0", 1 << 33, 1 << 34),
    ev.LogMessage("warning", "photo.jpg: cannot be read"),
    ev.Finished(10, "/runs/x", "/runs/x/pytorch_lora_weights.safetensors", files=("a.safetensors", "b.safetensors")),
    ev.Failed("Out of memory", "Choose int4", "Traceback ..."),
    ev.RunResult("failed", 7, "/runs/x", None, ev.Failed("Out of memory", "Choose int4")),
    ev.RunResult("finished", 10, "/runs/x", "/runs/x/pytorch_lora_weights.safetensors"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_json_line(event):
    line = json.dumps(ev.to_message(event))
    assert "\n" not in line
    back = ev.from_message(json.loads(line))
    assert back == event and type(back) is type(event)


def test_a_non_finite_loss_arrives_as_such():
    back = ev.from_message(json.loads(json.dumps(ev.to_message(ev.StepLogged(1, 2, float("nan"), 1e-4, (0.5,), 0.1)))))
    assert back.loss != back.loss  # NaN: the window shows a diverged run, not a crash


def test_anything_else_is_refused():
    with pytest.raises(ValueError, match="not an engine event"):
        ev.from_message({"type": "Shutdown"})
    with pytest.raises(ValueError, match="not an engine event"):
        ev.from_message({"step": 3})
