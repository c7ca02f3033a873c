"""Starting, steering and ending training runs from the GUI thread.

The controller owns the ``RunModel`` the widgets show and the ``TrainingWorker`` of the run in
progress. Engine events arrive queued on the GUI thread and go straight into the model.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from chroma_studio.gui.run_model import RunModel
from chroma_studio.gui.worker import TrainingWorker, connect_worker
from chroma_studio.protocol.events import Event, LogLevel, RunStatus, StepLogged

logger = logging.getLogger(__name__)

# A stop before the run's first step has nothing to save; if the engine has not ended this long
# after it (stuck on a stalled download, say), its process is ended.
STOP_BEFORE_TRAINING_WAIT_MS = 5_000
# A stop during training ends the step in progress, then saves. If the engine then sends nothing
# for this long, nor for three times its last step, it is taken to hang and its process is ended:
# the checkpoints it saved before are kept.
STOP_SILENCE_WAIT_MS = 30_000


class RunController(QObject):
    run_started = Signal(str)  # output folder
    run_ended = Signal(object)  # the engine's RunResult (None if the worker itself failed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = RunModel(self)
        self.worker: TrainingWorker | None = None
        self.stepped = False  # the running engine has trained a step
        self.step_ms = 0.0  # how long its last step took
        self._stop_watch = QTimer(self)  # runs from a stop during training until the run ends
        self._stop_watch.setSingleShot(True)
        self._stop_watch.timeout.connect(self._on_stop_watch_timeout)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start(self, config: Any, environment: dict[str, str] | None = None) -> TrainingWorker:
        if self.running:
            raise RuntimeError("A training run is already in progress.")
        self.model.clear(config.run.output_dir)
        self.model.run_settings = config.to_dict()
        self.model.total_steps = config.optim.max_train_steps or 0
        self.model.set_status(RunStatus.STARTING)
        worker = TrainingWorker(config, environment)
        self.stepped, self.step_ms = False, 0.0
        self._stop_watch.stop()
        connect_worker(worker, self._on_worker_event_emitted, self._on_worker_finished)
        self.worker = worker
        worker.start()
        self.run_started.emit(config.run.output_dir)
        return worker

    def open_folder(self, output_dir: str) -> None:
        """Show a past run (only while nothing is training)."""
        if self.running:
            raise RuntimeError("Stop the current run before opening another one.")
        self.model.load_folder(output_dir)

    # -- commands (thread-safe through TrainingControl) -----------------------------------
    def pause(self) -> None:
        if self.running:
            self.worker.control.pause()

    def resume(self) -> None:
        if self.running:
            self.worker.control.resume()

    def stop(self) -> None:
        """Ask the run to end after this step, saving a checkpoint and the LoRA."""
        if self.running:
            worker = self.worker
            worker.control.stop()
            if not self.stepped:
                QTimer.singleShot(STOP_BEFORE_TRAINING_WAIT_MS, lambda: self._end_if_not_training(worker))
            else:
                self._stop_watch.start(self._stop_silence_ms())
            if self.model.status != RunStatus.STOPPING:
                self.model.set_status(RunStatus.STOPPING)
                self.model.log_added.emit(LogLevel.INFO, "Stopping after this step; a checkpoint will be saved.")

    def kill(self) -> None:
        """End the engine process at once (checkpoints already saved are kept)."""
        if self.running:
            self.worker.control.kill()

    def _end_if_not_training(self, worker: TrainingWorker) -> None:
        if worker is self.worker and worker.is_running() and not self.stepped:
            logger.warning("the engine did not stop before training; ending its process")
            worker.control.kill()

    def _stop_silence_ms(self) -> int:
        return max(STOP_SILENCE_WAIT_MS, round(3 * self.step_ms))

    @Slot()
    def _on_stop_watch_timeout(self) -> None:
        if self.running:
            logger.warning(
                "the engine sent nothing for %d ms after a stop; ending its process", self._stop_silence_ms()
            )
            self.model.log_added.emit(
                LogLevel.WARNING,
                "The training process did not answer the stop and was ended; the checkpoints it saved are kept.",
            )
            self.worker.control.kill()

    def request_sample(self) -> None:
        if self.running:
            self.worker.control.request_sample()
            self.model.log_added.emit(LogLevel.INFO, "Sample images will be rendered after this step.")

    def request_save(self) -> None:
        if self.running:
            self.worker.control.request_save()
            self.model.log_added.emit(LogLevel.INFO, "A checkpoint will be saved after this step.")

    def shutdown(self, milliseconds: int = -1) -> bool:
        """Stop the run (if any) and join its thread; True when it has ended."""
        if self.worker is None:
            return True
        self.worker.stop()
        return self.worker.wait(milliseconds)

    # -- from the worker -------------------------------------------------------------------
    @Slot(object)
    def _on_worker_event_emitted(self, event: Event) -> None:
        if isinstance(event, StepLogged):
            self.stepped, self.step_ms = True, event.seconds * 1000
        if self._stop_watch.isActive():  # the engine is alive: give it the whole wait again
            self._stop_watch.start(self._stop_silence_ms())
        self.model.apply(event)

    @Slot(object)
    def _on_worker_finished(self, result: Any) -> None:
        self._stop_watch.stop()
        worker = self.worker
        if worker is not None:
            worker.wait()  # its thread has quit its loop already (direct connection); this joins it
        self.worker = None
        if self.model.active:
            # the engine always ends with Finished or Failed; this only guards against a lost event
            self.model.set_status(RunStatus.STOPPED)
        self.run_ended.emit(result)
