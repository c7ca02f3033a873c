"""Workers in their QThreads: events through one signal, a clean end, errors reported."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication
from support import TINY_DEMO, copy_demo_images

from chroma_studio.config import config_from_dict
from chroma_studio.gui import worker as worker_module
from chroma_studio.gui.worker import CallWorker, ExportWorker, TrainingWorker
from chroma_studio.protocol import events as ev
from chroma_studio.protocol.jobs import ExportFormat, ExportJob, TrainJob


def test_a_failed_run_reports_failed_then_finishes_and_its_thread_ends(qtbot, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    config = config_from_dict(
        {"model_flavour": "demo", "dataset_dirs": [str(empty)], "output_dir": str(tmp_path / "run")}
    )
    work = TrainingWorker(config)
    events = []
    work.event_emitted.connect(events.append)
    with qtbot.waitSignal(work.finished, timeout=120_000) as finished:
        thread = work.start()
        assert thread in worker_module.running_threads() or thread.isFinished()
    assert thread.wait(10_000) and not work.is_running()
    assert thread not in worker_module.running_threads()
    assert isinstance(events[-1], ev.Failed) and "No usable images" in events[-1].message
    assert finished.args[0].status is ev.RunStatus.FAILED
    assert work.job == TrainJob(config.to_dict())


def test_call_worker_reports_an_exception(qtbot):
    def boom():
        raise ValueError("no such device")

    work = CallWorker(boom)
    messages = []
    work.failed.connect(messages.append)
    with qtbot.waitSignal(work.finished, timeout=10_000) as finished:
        work.start()
    work.wait()
    assert finished.args == [None]
    assert messages == ["ValueError: no such device"]
    # back on the GUI thread, so dropping the last reference anywhere deletes it safely
    assert work.thread() is QCoreApplication.instance().thread()


@pytest.mark.slow
def test_a_stop_given_before_the_engine_process_is_up_still_ends_the_run(qtbot, tmp_path):
    config = config_from_dict(
        {
            **TINY_DEMO,
            "max_train_steps": 400,
            "dataset_dirs": [str(copy_demo_images(tmp_path / "data"))],
            "output_dir": str(tmp_path / "run"),
        }
    )
    work = TrainingWorker(config)
    events = []
    work.event_emitted.connect(events.append)
    work.stop()  # before the process exists: given to it as soon as it is up
    with qtbot.waitSignal(work.finished, timeout=120_000) as finished:
        work.start()
    work.wait()
    assert finished.args[0].status == "stopped"
    assert not [e for e in events if isinstance(e, ev.StepLogged)]
    assert isinstance(events[-1], ev.Finished) and events[-1].stopped


def test_an_export_worker_sends_an_export_job():
    assert ExportWorker("/runs/x", 4, "kohya").job == ExportJob("/runs/x", 4, ExportFormat.KOHYA)
