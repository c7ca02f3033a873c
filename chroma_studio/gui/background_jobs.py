"""``JobRunner``: run a function off the GUI thread, with progress and a cancel switch.

A job is any ``work(progress, should_stop) -> result``: it calls ``progress(done, total)`` as it
goes (``total`` 0 while the amount is unknown; an optional third argument says in words how far it
is, e.g. "1,200 files so far") and returns early when ``should_stop()`` turns true. Results and
errors come back as signals on the GUI thread; an exception is logged with its traceback and
handed to ``failed``, never swallowed. Progress reaches the GUI at most every
``PROGRESS_INTERVAL_S``, so a fast loop cannot flood the event queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QThread, QThreadPool, Signal

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05


class Progress(Protocol):
    def __call__(self, done: int, total: int, detail: str = "") -> None: ...


ShouldStop = Callable[[], bool]
Work = Callable[[Progress, ShouldStop], Any]


@dataclass(eq=False)
class Job:
    name: str  # what the job is, for the code: "scan", "check", ...
    label: str  # what the user reads while it runs: "Looking for images…"
    cancellable: bool = True
    done: int = 0
    total: int = 0  # 0 while unknown
    detail: str = ""  # how far it is, in words ("" when done/total say it)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()


class _JobRelay(QObject):
    progressed = Signal(object, int, int, str)
    finished = Signal(object, object)
    failed = Signal(object, object)


class JobRunner(QObject):
    started = Signal(object)  # Job
    progressed = Signal(object)  # Job, with done/total updated
    finished = Signal(object, object)  # Job, result (also for a cancelled job: a partial result or None)
    failed = Signal(object, object)  # Job, the exception
    cancelled = Signal(object)  # Job: cancel() was asked for; finished or failed still follows

    def __init__(self, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)  # created before the relay, so it is destroyed (and waited for) first
        self._pool.setMaxThreadCount(threads)
        self._pool.setThreadPriority(QThread.Priority.LowPriority)  # the GUI thread comes first
        self._relay = _JobRelay(self)
        self._relay.progressed.connect(self._on_relay_progressed)
        self._relay.finished.connect(self._on_relay_finished)
        self._relay.failed.connect(self._on_relay_failed)
        self._running: list[Job] = []

    def start(self, name: str, label: str, work: Work, cancellable: bool = True) -> Job:
        job = Job(name, label, cancellable)
        self._running.append(job)
        self._pool.start(lambda: self._run(job, work))
        self.started.emit(job)
        return job

    def running(self, name: str | None = None) -> list[Job]:
        return [job for job in self._running if name is None or job.name == name]

    def cancel(self, job: Job) -> None:
        if job.cancellable and not job.cancelled:
            job.cancel()
            self.cancelled.emit(job)

    def cancel_all(self) -> None:
        for job in list(self._running):
            self.cancel(job)

    def wait_for_done(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        """Cancel what can be cancelled and wait for every job to end."""
        self.cancel_all()
        self._pool.waitForDone()

    # -- on a pool thread ----------------------------------------------------------------------------
    def _run(self, job: Job, work: Work) -> None:
        last = 0.0

        def progress(done: int, total: int, detail: str = "") -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S or (total and done >= total):
                last = now
                self._relay.progressed.emit(job, done, total, detail)

        try:
            result = work(progress, job._stop.is_set)
        except Exception as exc:
            log.exception("%s failed", job.label)
            self._relay.failed.emit(job, exc)
            return
        self._relay.finished.emit(job, result)

    # -- back on the GUI thread ------------------------------------------------------------------------
    def _on_relay_progressed(self, job: Job, done: int, total: int, detail: str) -> None:
        if job in self._running:
            job.done, job.total, job.detail = done, total, detail
            self.progressed.emit(job)

    def _on_relay_finished(self, job: Job, result: object) -> None:
        self._forget(job)
        self.finished.emit(job, result)

    def _on_relay_failed(self, job: Job, exc: object) -> None:
        self._forget(job)
        self.failed.emit(job, exc)

    def _forget(self, job: Job) -> None:
        if job in self._running:
            self._running.remove(job)
