"""The hint for a step that is suddenly slow while the GPU's memory is nearly full."""

from __future__ import annotations

import time

import pytest
import torch

from chroma_studio.protocol import events as ev
from chroma_studio.training import slow_steps, trainer
from chroma_studio.training.slow_steps import SlowStepWatch, device_memory_used, is_slow, slow_step_hint

STEADY = [1.0, 1.1, 0.9, 1.0, 1.05]


@pytest.mark.parametrize(
    ("seconds", "recent", "memory", "hinted"),
    [
        (3.0, STEADY, 0.95, True),  # slow and nearly full: the driver may be spilling
        (3.0, STEADY, 0.80, False),  # slow, but memory has room: something else
        (3.0, STEADY, None, False),  # memory unknown (the CPU): no guess
        (1.9, STEADY, 0.99, False),  # under twice the median
        (3.0, STEADY[:4], 0.99, False),  # too little history to judge
        (2.5, [1.0, 1.0, 1.0, 9.0, 9.0], 0.99, True),  # the median, not the mean: two slow steps do not hide a third
    ],
)
def test_the_hint_needs_a_slow_step_and_a_nearly_full_device(seconds, recent, memory, hinted):
    hint = slow_step_hint(12, seconds, recent, memory)
    assert (hint is not None) == hinted
    if hint:
        assert "Step 12" in hint and "CUDA Sysmem Fallback Policy" in hint
        assert "Manage 3D settings" in hint and "Prefer No Sysmem Fallback" in hint


def test_the_watch_warns_once_and_asks_the_device_only_for_slow_steps():
    asked = []

    def memory():
        asked.append(True)
        return 0.97

    watch = SlowStepWatch(memory)
    hints = [watch.observe(step, seconds) for step, seconds in enumerate([1.0] * 6 + [5.0, 1.0, 6.0], start=1)]
    assert [i + 1 for i, h in enumerate(hints) if h] == [7]
    assert len(asked) == 1  # step 9 is slow too, but the hint was given
    assert not is_slow(1.0, watch.recent)


def test_memory_in_use_comes_from_the_driver_on_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * 2**30, 8 * 2**30))
    assert device_memory_used(torch.device("cuda")) == pytest.approx(7 / 8)
    assert device_memory_used(torch.device("cpu")) is None
    assert device_memory_used(torch.device("mps")) is None


def test_a_run_reports_a_sudden_slow_step_near_the_memory_limit_once(make_config, events, monkeypatch):
    calls = []
    real_loss = trainer.flow_matching_loss

    def loss_with_a_stall(*args, **kwargs):
        calls.append(True)
        if len(calls) in (8, 9):  # steps 8 and 9 stall, as a driver spilling to system RAM would
            slowest = max(e.seconds for e in events.of(ev.StepLogged))  # a busy machine's steps are slow too
            time.sleep(3 * slowest + 0.5)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "flow_matching_loss", loss_with_a_stall)
    # The hardware boundary: memory fills up as the stall begins (before, a busy CPU's slow step is no hint).
    monkeypatch.setattr(trainer, "device_memory_used", lambda device: 0.96 if len(calls) >= 8 else 0.5)
    result = trainer.run_training(make_config(max_train_steps=9, validation_steps=0), events)
    assert result.status == "finished", result.failure
    hints = [e for e in events.of(ev.LogMessage) if "Sysmem Fallback" in e.message]
    assert len(hints) == 1 and hints[0].level == "warning" and hints[0].message.startswith("Step 8 took")
    assert slow_steps.NEAR_FULL == 0.9
