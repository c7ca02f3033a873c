"""Engine events cross from the engine process to the window as JSON lines and come back equal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chroma_studio.dataset import Finding
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
    ev.Failed("Out of memory", "Choose int4", "Traceback ...", topic=ev.FailureTopic.MEMORY),
    ev.DatasetChecked(
        (
            Finding(Path("/data/cut.jpg"), "corrupt", "is damaged.", "error"),
            Finding(Path("/data/a.png"), "exact-duplicate", "is the same as b.png.", "warning", (Path("/data/b.png"),)),
            Finding(None, "few-images", "Only 2 images.", "info"),
        ),
        images=3,
        cancelled=True,
    ),
    ev.CaptionMade("/data/a b/café.jpg", "a photo of sks man, «smiling»", 3, 10),
    ev.CaptionSkipped("/data/cut.jpg", "is damaged; re-export it or remove it from the folder."),
    ev.CaptioningFinished(9, 1, cancelled=True, seconds=12.5),
    ev.RunResult("failed", 7, "/runs/x", None, ev.Failed("Out of memory", "Choose int4")),
    ev.RunResult("finished", 10, "/runs/x", "/runs/x/pytorch_lora_weights.safetensors"),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_json_line(event):
    line = json.dumps(ev.to_message(event))
    assert "\n" not in line
    back = ev.from_message(json.loads(line))
    assert back == event and type(back) is type(event)


def test_every_kind_of_message_has_an_example():
    assert {type(e) for e in EXAMPLES} == set(ev._MESSAGE_TYPES.values())


def test_closed_sets_are_enums_written_as_their_values():
    phase = ev.PhaseChanged("paused", "Paused at step 3")
    assert phase.phase is ev.Phase.PAUSED and phase.phase == "paused" and f"{phase.phase}" == "paused"
    assert ev.to_message(phase) == {"type": "PhaseChanged", "phase": "paused", "detail": "Paused at step 3"}
    assert ev.Failed("x", "y").topic is ev.FailureTopic.UNKNOWN
    assert ev.to_message(ev.Failed("x", "y", topic="dataset"))["topic"] == "dataset"
    assert ev.RunResult("stopped", 3, "/runs/x").status is ev.RunStatus.STOPPED
    assert ev.LogMessage("warning", "m").level is ev.LogLevel.WARNING
    with pytest.raises(ValueError, match="'thinking' is not a valid Phase"):
        ev.PhaseChanged("thinking")


def test_findings_come_back_with_their_paths():
    checked = next(e for e in EXAMPLES if isinstance(e, ev.DatasetChecked))
    back = ev.from_message(json.loads(json.dumps(ev.to_message(checked))))
    assert all(isinstance(f, Finding) for f in back.findings)
    assert back.findings[1].related == (Path("/data/b.png"),) and back.findings[2].path is None


def test_log_lines_are_typed_levels_that_read_as_before():
    lines = ev.log_lines(ev.Failed("Out of memory", "Choose int4"))
    assert lines == [(ev.LogLevel.ERROR, "Out of memory"), (ev.LogLevel.HINT, "Choose int4")]
    assert [ev.log_text(level, text) for level, text in lines] == ["ERROR: Out of memory", "HINT: Choose int4"]
    assert ev.log_lines(ev.PhaseChanged("caching", "Encoding captions")) == [("info", "Caching: Encoding captions")]
    assert ev.log_lines(ev.PhaseChanged("training", "Step 3")) == []


def test_a_non_finite_loss_arrives_as_such():
    back = ev.from_message(json.loads(json.dumps(ev.to_message(ev.StepLogged(1, 2, float("nan"), 1e-4, (0.5,), 0.1)))))
    assert back.loss != back.loss  # NaN: the window shows a diverged run, not a crash


def test_anything_else_is_refused():
    with pytest.raises(ValueError, match="not an engine event"):
        ev.from_message({"type": "Shutdown"})
    with pytest.raises(ValueError, match="not an engine event"):
        ev.from_message({"step": 3})
    with pytest.raises(ValueError, match=r"a malformed PhaseChanged event \(phase: 'thinking' is not a valid Phase\)"):
        ev.from_message({"type": "PhaseChanged", "phase": "thinking"})
    with pytest.raises(ValueError, match="a malformed CheckpointSaved event"):
        ev.from_message({"type": "CheckpointSaved", "step": 3})


def test_events_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.PhaseChanged("training").phase = "paused"
