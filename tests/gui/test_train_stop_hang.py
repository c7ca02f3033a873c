"""Stop escalates: an engine that hangs after a step and ignores the stop has its process ended."""

from __future__ import annotations

import os
import textwrap
import time

import pytest
from support import TINY_DEMO

from chroma_studio.config import config_from_dict
from chroma_studio.gui import run_controller
from chroma_studio.gui.run_controller import RunController
from chroma_studio.protocol import events as ev
from chroma_studio.protocol import remote

# An engine that trains one step, then hangs: it reads its job, reports the step and sleeps
# without ever reading the stop that follows.
HANGING_ENGINE = textwrap.dedent(
    """
    import json, sys, time
    from chroma_studio.protocol.events import PhaseChanged, StepLogged, to_message

    sys.stdin.buffer.readline()  # the job
    for event in (PhaseChanged("training", "Step 0 of 10"), StepLogged(1, 10, 0.5, 1e-4, (0.3,), 0.01)):
        sys.stdout.write(json.dumps(to_message(event)) + "\\n")
    sys.stdout.flush()
    time.sleep(600)
    """
)


@pytest.fixture
def hanging_engine(tmp_path, monkeypatch) -> dict[str, str]:
    """Engine processes run the hanging engine; the environment that lets them import it."""
    (tmp_path / "hanging_engine.py").write_text(HANGING_ENGINE)
    monkeypatch.setattr(remote, "CHILD_MODULE", "hanging_engine")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}


def test_a_stop_the_engine_ignores_after_a_step_ends_its_process(qtbot, tmp_path, hanging_engine, monkeypatch):
    monkeypatch.setattr(run_controller, "STOP_SILENCE_WAIT_MS", 500)
    config = config_from_dict({**TINY_DEMO, "dataset_dirs": [str(tmp_path)], "output_dir": str(tmp_path / "run")})
    controller = RunController()
    logged = []
    controller.model.log_added.connect(lambda level, message: logged.append((level, message)))
    controller.start(config, hanging_engine)
    qtbot.waitUntil(lambda: controller.stepped, timeout=60_000)
    with qtbot.waitSignal(controller.run_ended, timeout=30_000) as ended:
        began = time.monotonic()
        controller.stop()
    assert time.monotonic() - began < 15  # ended by the controller, not by the engine's own timeout
    assert ended.args[0].status == ev.RunStatus.STOPPED
    assert not controller.running
    assert any(level == ev.LogLevel.WARNING and "did not answer the stop" in message for level, message in logged)
