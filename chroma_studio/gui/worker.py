"""Engine work off the GUI thread: a QObject moved to its own QThread.

``TrainingWorker`` runs ``run_training``; ``ModelDownloadWorker`` fetches the model files of a
config ahead of training. Both import the engine inside their ``run`` slot, so torch and
diffusers load only when work starts. The engine's sink forwards each event through one
``Signal(object)``; stop, pause and one-off requests go through a thread-safe
``TrainingControl`` because the worker's loop never returns to an event loop while it runs.

Every QThread started here is remembered (weakly) so the window and the tests can check that
none is left running.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import ModuleType
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot

logger = logging.getLogger(__name__)

_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


_import_lock = threading.Lock()


def import_engine(name: str) -> ModuleType:
    """Import an engine module (torch, diffusers...) from a worker thread without freezing the window.

    Importing the ML stack creates hundreds of thousands of objects, and each full pass of the cyclic garbage
    collector over them holds the GIL for 100-300 ms, during which the GUI thread cannot run. So the
    collector pauses while the import runs, and afterwards everything alive is moved to the
    permanent generation (``gc.freeze``): later full collections, including the engine's own
    ``gc.collect()`` between phases, only walk what was created since.
    """
    with _import_lock:
        if name in sys.modules:
            return sys.modules[name]
        enabled = gc.isenabled()
        gc.disable()
        try:
            return importlib.import_module(name)
        finally:
            gc.freeze()
            if enabled:
                gc.enable()


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
    """Engine work on a config: events through one signal, and a thread-safe control to steer it.

    ``environment`` (e.g. HF_ENDPOINT from the settings) is applied in the worker thread first.
    """

    event_emitted = Signal(object)  # an event dataclass from chroma_studio.training.events

    def __init__(self, config: Any, environment: dict[str, str] | None = None) -> None:
        super().__init__()
        from chroma_studio.training.control import TrainingControl  # no torch: a plain module

        self.control = TrainingControl()
        self.config = config
        self.environment = dict(environment or {})

    def stop(self) -> None:
        self.control.stop()

    def _sink(self, event: Any) -> None:
        self.event_emitted.emit(event)

    def _report(self, exc: Exception) -> None:
        from chroma_studio.training.errors import describe_failure

        failure = describe_failure(exc)
        logger.error("%s failed: %s\n%s", type(self).__name__, failure.message, failure.traceback)
        self.event_emitted.emit(failure)


class TrainingWorker(_EngineWorker):
    """One training run. ``control`` pauses, resumes, stops (with a checkpoint), samples and saves."""

    def _work(self) -> Any:
        apply_environment(self.environment)
        trainer = import_engine("chroma_studio.training.trainer")
        return trainer.run_training(self.config, self._sink, self.control)


class ModelDownloadWorker(_EngineWorker):
    """Fetch (or build, for the demo) every model file a config needs; progress as events."""

    def _work(self) -> Any:
        apply_environment(self.environment)
        import_engine("chroma_studio.training.models")
        from chroma_studio.training.events import Finished, PhaseChanged
        from chroma_studio.training.hub import DownloadCancelled
        from chroma_studio.training.models import Loader, resolve_source

        source = resolve_source(self.config)
        self._sink(PhaseChanged("loading", f"Getting the model: {source.label}"))
        try:
            Loader(source, self._sink, self.control).prepare()
        except DownloadCancelled:
            self._sink(Finished(0, "", None, stopped=True))
            return None
        self._sink(Finished(0, "", None))
        return source.label


def apply_environment(environment: dict[str, str]) -> None:
    """Set variables such as HF_ENDPOINT before the Hub client is first imported."""
    for key, value in environment.items():
        if value:
            os.environ[key] = value
    endpoint = environment.get("HF_ENDPOINT")
    if endpoint:
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None and getattr(constants, "ENDPOINT", endpoint) != endpoint:
            logger.warning("HF endpoint changed to %s; restart the app for downloads to use it.", endpoint)


def connect_worker(
    worker: _EngineWorker, on_event: Callable[[Any], None], on_finished: Callable[[Any], None]
) -> _EngineWorker:
    """Connect a worker's signals to GUI-thread callables (queued: they run on the GUI thread)."""
    worker.event_emitted.connect(on_event, Qt.ConnectionType.QueuedConnection)
    worker.finished.connect(on_finished, Qt.ConnectionType.QueuedConnection)
    return worker
