"""``QueueModel``: the queue of runs in the app, over the queue file the command line shares.

Runs of the queue go through the app's own ``RunController``, one after another, so each shows
live on the Train page as a run started by hand does. A failed run does not stop the queue; a run
stopped by hand (its Stop button) ends as "stopped" and the queue goes on; ``stop()`` (the panel's
Stop queue, or closing the app) stops the running entry with a checkpoint and leaves it "waiting
(resume)", first in line. While the queue runs, the app holds its lock; while another runner (the
command line) holds it, ``busy`` says who and ``run()`` refuses. The file is read again every
couple of seconds, so entries added or finished from the command line show up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from chroma_studio.base.queue_lock import APP, QueueBusy, describe_owner
from chroma_studio.base.run_queue import EntryStatus, QueueEntry, QueueError, QueueFileError, RunQueue
from chroma_studio.config import ConfigError, config_from_dict
from chroma_studio.gui.run_controller import RunController
from chroma_studio.protocol.events import Failed, RunResult, RunStatus

logger = logging.getLogger(__name__)

POLL_MS = 2000  # how often the file and its lock are read again


class QueueModel(QObject):
    entries_changed = Signal()
    busy_changed = Signal(str)  # who else runs the queue, in words ("" when nobody)
    running_changed = Signal(bool)
    queue_finished = Signal(int, int)  # runs this pass ran, of which failed
    problem_found = Signal(str)  # the file cannot be read, a run cannot start: in words

    def __init__(
        self,
        controller: RunController,
        path: str | Path | None = None,
        environment: Callable[[], dict[str, str]] = dict,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.environment = environment
        self.error = ""  # why the file cannot be read ("" when it can)
        self.queue = self._open(path)
        self.lock = self.queue.lock(APP)
        self.busy = self._other_runner()
        self.running = False
        self.current: QueueEntry | None = None
        self._stopping = False
        self._ran = self._failed = 0
        self._last_failure: Failed | None = None
        self._stamp = self._file_stamp()
        controller.run_ended.connect(self._on_controller_run_ended)
        controller.model.run_failed.connect(self._on_model_run_failed)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self.refresh)
        self._poll.start()

    def _open(self, path: str | Path | None) -> RunQueue:
        queue = RunQueue(path, load=False)
        try:
            queue.reload()
        except QueueFileError as exc:  # shown; changes are refused so the damaged file is kept
            self.error = str(exc)
            logger.warning("%s", exc)
        return queue

    @property
    def entries(self) -> list[QueueEntry]:
        return list(self.queue.entries)

    def interrupted(self) -> list[QueueEntry]:
        """Entries stopped with a checkpoint (the app closed, a runner ended) that resume first."""
        if self.busy:
            return []
        return self.queue.interrupted() + [e for e in self.queue.entries if e.status is EntryStatus.RUNNING]

    # -- changing --------------------------------------------------------------------------------
    def add(self, config: dict[str, Any], name: str = "") -> QueueEntry:
        """Add a snapshot of a flat config; raises QueueError saying why it is refused."""
        self._writable()
        entry = self.queue.add(config, name)
        self._changed()
        return entry

    def free_output_dir(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``-3``… when an entry of the queue trains there already."""
        taken = {Path(e.output_dir) for e in self.queue.entries}
        candidate, n = Path(wanted), 1
        while candidate in taken or candidate.exists():
            n += 1
            candidate = Path(f"{wanted}-{n}")
        return str(candidate)

    def remove(self, entry_id: int) -> None:
        self._writable()
        self.queue.remove(entry_id)
        self._changed()

    def move(self, entry_id: int, offset: int) -> None:
        self._writable()
        self.queue.move(entry_id, offset)
        self._changed()

    def _writable(self) -> None:
        if self.error:
            raise QueueError(self.error)

    def _changed(self) -> None:
        self._stamp = self._file_stamp()
        self.entries_changed.emit()

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> str:
        """Start running the queue; "" when it started, else why not (in words)."""
        if self.running:
            return ""
        if self.error:
            return self.error
        if self.controller.running:
            return "A training is running: run the queue once it has ended."
        try:
            self.lock.acquire()
        except QueueBusy as exc:
            self._set_busy(describe_owner(exc.owner) if exc.owner else str(exc))
            return f"{self.busy} The app does not run it meanwhile."
        self.queue.reload()
        self.queue.recover()
        if self.queue.next_entry() is None:
            self.lock.release()
            return "Nothing is waiting in the queue."
        self.running, self._stopping, self._ran, self._failed = True, False, 0, 0
        self.running_changed.emit(True)
        self._start_next()
        return ""

    def stop(self) -> None:
        """Stop the running entry with a checkpoint; it waits to resume first. The queue stops."""
        if self.running:
            self._stopping = True
            self.controller.stop()

    def _start_next(self) -> None:
        while (entry := self.queue.next_entry()) is not None:
            try:
                config = config_from_dict(entry.run_config(), f"queue entry {entry.id}")
            except ConfigError as exc:  # a snapshot a newer or older version cannot read
                self._ran, self._failed = self._ran + 1, self._failed + 1
                self.queue.mark_ended(entry.id, EntryStatus.FAILED, result=str(exc))
                self._changed()
                continue
            self.current = self.queue.mark_started(entry.id)
            self._last_failure = None
            self._changed()
            self.controller.start(config, self.environment())
            return
        self._end(stopped=False)

    def _end(self, stopped: bool) -> None:
        self.running, self.current = False, None
        self.lock.release()
        self._changed()
        self.running_changed.emit(False)
        if not stopped:
            self.queue_finished.emit(self._ran, self._failed)

    @Slot(object)
    def _on_model_run_failed(self, failure: Failed) -> None:
        self._last_failure = failure

    @Slot(object)
    def _on_controller_run_ended(self, result: RunResult | None) -> None:
        entry = self.current
        if not self.running or entry is None:
            return
        status = result.status if result is not None else RunStatus.FAILED
        step = result.step if result is not None else 0
        if status is RunStatus.STOPPED and self._stopping:
            self.queue.mark_interrupted(entry.id, step)
            self._end(stopped=True)
            return
        self._ran += 1
        if status is RunStatus.FINISHED:
            self.queue.mark_ended(entry.id, EntryStatus.FINISHED, step, (result and result.lora_path) or "")
        elif status is RunStatus.STOPPED:
            self.queue.mark_ended(entry.id, EntryStatus.STOPPED, step, "stopped by hand")
        else:
            self._failed += 1
            failure = (result.failure if result is not None else None) or self._last_failure
            self.queue.mark_ended(entry.id, EntryStatus.FAILED, step, failure.message if failure else "failed")
        self.current = None
        if self._stopping:
            self._end(stopped=True)
        else:
            self._start_next()

    # -- following the file ----------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int]:
        try:
            info = self.queue.path.stat()
        except OSError:
            return (0, 0)
        return (info.st_mtime_ns, info.st_size)

    def _other_runner(self) -> str:
        owner = self.lock.held_by_other()
        return describe_owner(owner) if owner is not None else ""

    def _set_busy(self, busy: str) -> None:
        if busy != self.busy:
            self.busy = busy
            self.busy_changed.emit(busy)

    @Slot()
    def refresh(self) -> None:
        """Read the file and the lock again; announce what changed."""
        if not self.running:
            self._set_busy(self._other_runner())
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            self.queue.reload()
        except QueueFileError as exc:
            if str(exc) != self.error:
                self.error = str(exc)
                self.problem_found.emit(self.error)
            return
        self.error = ""
        self._changed()

    def shutdown(self) -> None:
        self._poll.stop()
        self.lock.release()
