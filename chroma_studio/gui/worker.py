"""Work off the GUI thread: a QObject moved to its own QThread.

The engine runs in a process of its own (``training/child.py``), never in the app's process:
importing torch and running the engine here would hold the interpreter lock for long stretches
and stall the window, and a crash in a GPU driver or the system's out-of-memory killer would
take the window with it. ``TrainingWorker`` (a run), ``ModelDownloadWorker`` (fetch a config's
model files ahead of training) and ``ExportWorker`` (write a checkpoint's LoRA) each start that
process from their thread, wait on its events, and forward each through one ``Signal(object)``.
Their ``control`` (a ``RemoteControl``) passes stop, pause, resume, "sample now" and "save now"
to the process at once, from any thread. ``CallWorker`` runs a light function (hardware
detection) in a thread.

Every QThread started here is remembered (weakly) so the window and the tests can check that
none is left running.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

from chroma_studio.protocol.events import Failed
from chroma_studio.protocol.jobs import EngineJob, ExportFormat, ExportJob, PrepareJob, TrainJob
from chroma_studio.protocol.remote import RemoteControl, run_in_process

logger = logging.getLogger(__name__)

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def started_threads() -> list[QThread]:
    """Every worker thread started in this process that still exists."""
    return list(_threads)


def running_threads() -> list[QThread]:
    return [thread for thread in _threads if thread.isRunning()]


class _ThreadedWorker(QObject):
    """A QObject that moves to a new QThread and runs ``_work()`` there once."""

    finished = Signal(object)  # the work's result, or None when it failed

    def __init__(self) -> None:
        super().__init__()
        self.worker_thread: QThread | None = None

    def start(self) -> QThread:
        thread = QThread()
        thread.setObjectName(type(self).__name__)
        self.moveToThread(thread)
        thread.started.connect(self.run)
        # The worker thread quits its own loop the moment the work returns (no GUI round trip).
        self.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        self.worker_thread = thread
        _threads.add(thread)
        thread.start()
        return thread

    def is_running(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.isRunning()

    def wait(self, milliseconds: int = -1) -> bool:
        """Quit and join the thread; True when it has ended."""
        thread = self.worker_thread
        if thread is None:
            return True
        thread.quit()
        return thread.wait() if milliseconds < 0 else thread.wait(milliseconds)

    @Slot()
    def run(self) -> None:
        result = None
        try:
            result = self._work()
        except Exception as exc:  # never lost: reported, logged, and shown by the receiver
            self._report(exc)
        finally:
            # Hand the object back to the GUI thread before its own thread ends, so it can be
            # deleted from there (by Python's collector, at any time) like any other object.
            app = QCoreApplication.instance()
            if app is not None:
                self.moveToThread(app.thread())
            self.finished.emit(result)

    def _work(self) -> Any:
        raise NotImplementedError

    def _report(self, exc: Exception) -> None:
        logger.exception("%s failed", type(self).__name__, exc_info=exc)


class CallWorker(_ThreadedWorker):
    """Runs a plain function off the GUI thread (e.g. hardware detection); ``failed`` carries the error."""

    failed = Signal(str)

    def __init__(self, function: Callable[[], Any]) -> None:
        super().__init__()
        self.function = function

    def _work(self) -> Any:
        return self.function()

    def _report(self, exc: Exception) -> None:
        super()._report(exc)
        self.failed.emit(f"{type(exc).__name__}: {exc}")


class _EngineWorker(_ThreadedWorker):
    """An engine job in its own process: events through one signal, ``control`` to steer it.

    ``environment`` (e.g. HF_ENDPOINT from the settings) is set for the process.
    """

    event_emitted = Signal(object)  # an event dataclass from chroma_studio.protocol.events

    def __init__(self, job: EngineJob, environment: dict[str, str] | None = None) -> None:
        super().__init__()
        self.control = RemoteControl()
        self.job = job
        self.environment = dict(environment or {})

    def stop(self) -> None:
        self.control.stop()

    def _sink(self, event: Any) -> None:
        self.event_emitted.emit(event)

    def _work(self) -> Any:
        return run_in_process(self.job, self._sink, self.control, self.environment)

    def _report(self, exc: Exception) -> None:
        super()._report(exc)
        self.event_emitted.emit(
            Failed(
                f"The engine process could not be started: {type(exc).__name__}: {exc}",
                "The installation looks damaged: reinstall Chroma Studio (your projects and runs are kept).",
            )
        )


class TrainingWorker(_EngineWorker):
    """One training run; the result is the engine's ``RunResult``."""

    def __init__(self, config: Any, environment: dict[str, str] | None = None) -> None:
        super().__init__(TrainJob(config.to_dict()), environment)
        self.config = config


class ModelDownloadWorker(_EngineWorker):
    """Fetch (or build, for the demo) every model file a config needs; the result is the model's name."""

    def __init__(self, config: Any, environment: dict[str, str] | None = None) -> None:
        super().__init__(PrepareJob(config.to_dict()), environment)
        self.config = config


class ExportWorker(_EngineWorker):
    """Write the LoRA of a run's checkpoint (``step`` None: the newest) in ``fmt``; the result is its path."""

    def __init__(self, run_dir: str, step: int | None, fmt: ExportFormat | str) -> None:
        super().__init__(ExportJob(run_dir, step, ExportFormat(fmt)))


def connect_worker(
    worker: _EngineWorker, on_event: Callable[[Any], None], on_finished: Callable[[Any], None]
) -> _EngineWorker:
    """Connect a worker's signals to GUI-thread callables (queued: they run on the GUI thread)."""
    worker.event_emitted.connect(on_event, Qt.ConnectionType.QueuedConnection)
    worker.finished.connect(on_finished, Qt.ConnectionType.QueuedConnection)
    return worker
