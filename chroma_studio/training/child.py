"""The engine as its own process, for the desktop app: ``python -m chroma_studio.training.child``.

The window never imports torch: loading it (and running the engine) in the app's process would
hold the interpreter lock for long stretches and stall the window. The app starts this module
instead and talks to it over the standard streams (``remote.py`` is the other end):

- stdin, first line: the job as JSON (``jobs.py``: ``{"job": "train" | "prepare" | "export" |
  "check-dataset" | "caption", ...}``); then one command per line (``control.Command``: ``stop``, ``pause``,
  ``resume``, ``sample``, ``save``). The end of stdin (the window went away) counts as ``stop``,
  so a run still ends with a checkpoint.
- stdout: one JSON object per line, the engine's events (``events.to_message``), then
  ``{"type": "Result", "value": ...}``: a ``RunResult`` for ``train``, the model's name for
  ``prepare``, the written file for ``export``, a ``DatasetChecked`` for ``check-dataset``, a
  ``CaptioningFinished`` for ``caption`` (its captions came before as ``CaptionMade`` events), or
  null when the job failed (after a ``Failed``). Whatever a library prints goes to stderr
  instead, so it cannot garble the stream.
- stderr: logging and anything else; the app keeps its end for the failure dialog.

After the result the process ends at once (``os._exit``): everything is written by then, and a
library's leftover thread must not keep the app waiting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from chroma_studio.base.logs import setup_logging
from chroma_studio.protocol.control import Command, TrainingControl
from chroma_studio.protocol.events import (
    DatasetChecked,
    Event,
    Failed,
    Finished,
    Message,
    Phase,
    PhaseChanged,
    Progress,
    to_message,
)
from chroma_studio.protocol.jobs import (
    CaptionJob,
    DatasetCheckJob,
    EngineJob,
    ExportJob,
    JobError,
    PrepareJob,
    TrainJob,
    job_from_message,
)

logger = logging.getLogger(__name__)

CHECK_PROGRESS_INTERVAL_S = 0.05  # the dataset check's progress events, at most this often


class _Writer:
    """The event stream: whole JSON lines, from any thread."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream: BinaryIO | None = stream
        self.lock = threading.Lock()
        self.done = False

    def send(self, message: dict[str, Any]) -> None:
        # ASCII escapes carry a file name's undecodable bytes (lone surrogates) through to the app intact.
        line = json.dumps(message, ensure_ascii=True, allow_nan=True).encode("ascii") + b"\n"
        with self.lock:
            if self.stream is None:
                return
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):  # nobody reads any more (the app is gone): the job goes on
                self.stream = None

    def event(self, event: Event) -> None:
        self.send(to_message(event))

    def result(self, value: Message | str | None) -> None:
        if dataclasses.is_dataclass(value):  # a RunResult, a DatasetChecked, a CaptioningFinished
            value = to_message(value)
        self.done = True  # before the app can see it and close our stdin
        self.send({"type": "Result", "value": value})


def _take_stdout() -> BinaryIO:
    """A private copy of stdout for the events; fd 1 and ``sys.stdout`` then point at stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    if sys.platform == "win32":  # native code may write through the Win32 handle, not fd 1
        import ctypes
        import msvcrt

        ctypes.windll.kernel32.SetStdHandle(-11, msvcrt.get_osfhandle(2))  # STD_OUTPUT_HANDLE
    sys.stdout = sys.stderr
    return events


def _silence_output() -> None:
    """Point fds 1 and 2 at the null device: with the app gone, a write there would fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def _lines(fd: int) -> Iterator[bytes]:
    """Lines read straight from a file descriptor.

    Not through ``sys.stdin``: a daemon thread blocked in a buffered read makes the interpreter
    abort at exit ("could not acquire lock ... at interpreter shutdown").
    """
    pending = b""
    while chunk := os.read(fd, 65536):
        pending += chunk
        *whole, pending = pending.split(b"\n")
        yield from whole
    if pending:
        yield pending


def _read_commands(lines: Iterator[bytes], control: TrainingControl, writer: _Writer) -> None:
    try:
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            try:
                command = Command(text)
            except ValueError:
                logger.warning("not a command: %r", text)
                continue
            control.obey(command)
    except OSError:
        pass
    finally:
        # The app is gone, or is done with us: end the job, keeping its work (a checkpoint).
        if not writer.done:
            _silence_output()
        control.stop()


def run_job(job: EngineJob, writer: _Writer, control: TrainingControl) -> Any:
    """Run one job, reporting to ``writer``; the job's result (None when it failed)."""
    from chroma_studio.config import config_from_dict

    match job:
        case TrainJob(config=config):
            from chroma_studio.training.trainer import run_training

            return run_training(config_from_dict(config), writer.event, control)
        case PrepareJob(config=config):
            return _prepare(config_from_dict(config), writer, control)
        case ExportJob(run_dir=run_dir, step=step, format=fmt):
            from chroma_studio.training.export import export_checkpoint

            return str(export_checkpoint(run_dir, step=step, fmt=fmt))
        case DatasetCheckJob():
            return _check_dataset(job, writer, control)
        case CaptionJob():
            from chroma_studio.training.captioning import run_captioning

            return run_captioning(job, writer.event, control)
    raise JobError(f"the engine has no way to run a {job.kind!r} job")


def _prepare(config: Any, writer: _Writer, control: TrainingControl) -> str | None:
    """Fetch (or build) every model file ``config`` needs; the model's name, or None when cancelled."""
    from chroma_studio.training.hub import DownloadCancelled
    from chroma_studio.training.loading import Loader, resolve_source

    source = resolve_source(config)
    writer.event(PhaseChanged(Phase.LOADING, f"Getting the model: {source.label}"))
    try:
        Loader(source, writer.event, control).prepare()
    except DownloadCancelled:
        writer.event(Finished(0, "", None, stopped=True))
        return None
    writer.event(Finished(0, "", None))
    return str(source.label)


def _check_dataset(job: DatasetCheckJob, writer: _Writer, control: TrainingControl) -> DatasetChecked:
    """The dataset check (``dataset.check_dataset``) with progress; a stop ends it with what it found so far."""
    from chroma_studio.dataset import check_dataset

    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= CHECK_PROGRESS_INTERVAL_S or done >= total:
            last = now
            writer.event(Progress("Checking images", done, total, "images"))

    report = check_dataset(
        job.folders, job.resolution, None, progress=progress, should_stop=lambda: control.stop_requested
    )
    return DatasetChecked(tuple(report.findings), len(report.images), cancelled=report.cancelled)


def main() -> int:
    faulthandler.enable()  # a crash in native code still leaves a Python traceback on stderr
    writer = _Writer(_take_stdout())
    commands = _lines(sys.stdin.fileno())
    try:
        message = json.loads(next(commands, b"{}"))
    except ValueError:  # not JSON: refused below like any other message that is not a job
        message = None
    setup_logging(isinstance(message, dict) and bool(message.pop("verbose", False)))
    try:
        job = job_from_message(message)
    except JobError as exc:
        logger.error("%s", exc)
        writer.event(Failed(f"The engine was given a job it cannot run: {exc}", "Reinstall Chroma Studio."))
        writer.result(None)
        return 2
    control = TrainingControl()
    # Ctrl-C in the terminal the app was started from reaches this process too: stop cleanly.
    signal.signal(signal.SIGINT, lambda *_: control.stop())
    reader = threading.Thread(target=_read_commands, args=(commands, control, writer), name="commands", daemon=True)
    reader.start()
    code = 0
    try:
        writer.result(run_job(job, writer, control))
    except Exception as exc:
        from chroma_studio.training.errors import describe_failure

        failure = describe_failure(exc)
        logger.error("%s failed: %s\n%s", job.kind, failure.message, failure.traceback)
        writer.event(failure)
        writer.result(None)
        code = 1
    return code


def _exit(code: int) -> None:
    """End at once: the work is written and reported; a library's leftover thread or a GPU
    runtime's teardown must not keep the process (and the app waiting on it) alive."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
