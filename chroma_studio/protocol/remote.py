"""Run an engine job in its own process (``child.py``) and hear its events as if it ran here.

``run_in_process(job, sink, control)`` starts ``python -m chroma_studio.training.child``, sends the
job (a dataclass of ``jobs.py``), turns each line the child writes back into the event dataclass,
hands it to ``sink``, and returns the job's result. ``RemoteControl`` is a ``TrainingControl``
whose commands also reach the child; ``stop_when`` stops it when a caller's own cancel switch
turns. Nothing here imports torch, so the desktop app's process never loads it.

A training job with ``num_processes`` > 1 starts torch's launcher instead (``launch.py``); its rank 0
speaks the same protocol, so nothing else here changes but how a death is described.

If the child dies without a word (killed for memory, a crash in a driver), the caller still gets
a ``Failed`` event whose hint says what most likely happened, with the child's last output as
the details.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, overload

from chroma_studio.base.logs import is_verbose
from chroma_studio.base.run_folder import checkpoint_dirs
from chroma_studio.protocol import launch
from chroma_studio.protocol.control import Command, TrainingControl
from chroma_studio.protocol.events import (
    CheckpointSaved,
    Failed,
    FailureTopic,
    Finished,
    RunPlanned,
    RunResult,
    RunStatus,
    SampleReady,
    Sink,
    StepLogged,
    from_message,
)
from chroma_studio.protocol.jobs import EngineJob, TrainJob

logger = logging.getLogger(__name__)

CHILD_MODULE = "chroma_studio.training.child"
STDERR_LINES_KEPT = 60
EXIT_WAIT_S = 15  # how long a child that has sent its result may take to exit


class RemoteControl(TrainingControl):
    """A ``TrainingControl`` that forwards every command to the child process once attached.

    Commands given before the child is up are replayed when it attaches; commands after it has
    ended are dropped. State changes and sends happen under one lock, so a command given while
    the child attaches is neither lost nor sent out of order. ``kill()`` ends the child at once
    (for a window that will not wait for a stuck job).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        self.killed = False

    def stop(self) -> None:
        with self._lock:
            super().stop()
            self._send(Command.STOP)

    def pause(self) -> None:
        with self._lock:
            super().pause()
            self._send(Command.PAUSE)

    def resume(self) -> None:
        with self._lock:
            super().resume()
            self._send(Command.RESUME)

    def request_sample(self) -> None:
        with self._lock:
            if not self._send(Command.SAMPLE):
                super().request_sample()  # replayed on attach

    def request_save(self) -> None:
        with self._lock:
            if not self._send(Command.SAVE):
                super().request_save()

    def kill(self) -> None:
        """End the child now: no checkpoint beyond those already saved."""
        with self._lock:
            super().stop()
            self.killed = True
            if self._process is not None:
                with contextlib.suppress(OSError):
                    self._process.kill()

    def attach(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._process = process
            if self.killed:
                self.kill()
            elif self.stop_requested:
                self._send(Command.STOP)
            elif self.paused:
                self._send(Command.PAUSE)
            for request in self.take_requests():
                self._send(Command(request.value))

    def detach(self) -> None:
        with self._lock:
            self._process = None

    def _send(self, command: Command) -> bool:
        """True when the command was written to the child (call with the lock held)."""
        stream = self._process.stdin if self._process is not None else None
        if stream is None:
            return False
        try:
            stream.write(command.value.encode("ascii") + b"\n")
            stream.flush()
        except (OSError, ValueError):  # the child has just ended
            return False
        return True


def child_command() -> list[str]:
    """The command line that starts the engine process, with this very interpreter.

    On Windows the app runs under ``pythonw.exe``; the engine gets the console interpreter beside
    it (its standard streams are the pipes; ``CREATE_NO_WINDOW`` keeps a console from opening).
    """
    executable = Path(sys.executable)
    if executable.name.lower() == "pythonw.exe" and executable.with_name("python.exe").is_file():
        executable = executable.with_name("python.exe")
    return [str(executable), "-m", CHILD_MODULE]


@overload
def run_in_process(
    job: TrainJob, sink: Sink, control: RemoteControl | None = None, environment: dict[str, str] | None = None
) -> RunResult: ...


@overload
def run_in_process(
    job: EngineJob, sink: Sink, control: RemoteControl | None = None, environment: dict[str, str] | None = None
) -> Any: ...


def run_in_process(
    job: EngineJob,
    sink: Sink,
    control: RemoteControl | None = None,
    environment: dict[str, str] | None = None,
) -> Any:
    """Run ``job`` (see ``child.py``) in a new process; events go to ``sink``; returns its result.

    For a ``TrainJob`` the result is a ``RunResult`` (status FAILED when the process died); for
    other jobs it is the job's value, or None when it failed (a ``Failed`` event says why).
    """
    control = control or RemoteControl()
    # A training job of several processes runs under torch's launcher, whose rank 0 speaks for the
    # run; in a process group of its own, so a Ctrl-C reaches the caller, who asks for a stop.
    processes = launch.processes_of(job.config) if isinstance(job, TrainJob) else 1
    command = child_command() if processes == 1 else launch.launcher_command(child_command()[0], processes)
    env = {**os.environ, **{key: value for key, value in (environment or {}).items() if value}}
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"  # native code's stdio too: nothing is left in a buffer at exit
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console window on Windows
        start_new_session=processes > 1 and sys.platform != "win32",
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
    reader = threading.Thread(target=_pass_on_stderr, args=(process.stderr, tail), name="engine-stderr", daemon=True)
    reader.start()
    tracker = _Tracker(sink)
    try:
        with contextlib.suppress(OSError):  # a child that died at once is reported below
            process.stdin.write(json.dumps({**job.to_message(), "verbose": is_verbose()}).encode("utf-8") + b"\n")
            process.stdin.flush()
        control.attach(process)
        for raw in process.stdout:
            tracker.read(raw)
            if tracker.has_result:
                break  # whatever the child does while it exits is not the caller's wait
    except BaseException:
        process.kill()
        raise
    finally:
        control.detach()
        with contextlib.suppress(OSError):
            process.stdin.close()  # the child's command reader ends
        try:
            code = process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            logger.warning("the engine process did not exit after its work; ending it")
            process.kill()
            code = process.wait()
        reader.join(timeout=EXIT_WAIT_S)
        for stream in (process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    if tracker.has_result:
        return tracker.result
    training = isinstance(job, TrainJob)
    output_dir = str(job.config.get("output_dir") or "") if isinstance(job, TrainJob) else ""
    if tracker.end is not None:  # it had said how it ended, then died before its result
        end = tracker.end
        if isinstance(end, Failed):
            return RunResult(RunStatus.FAILED, tracker.step, output_dir, failure=end) if training else None
        status = RunStatus.STOPPED if end.stopped else RunStatus.FINISHED
        return RunResult(status, end.step, output_dir, end.lora_path) if training else None
    saved = checkpoint_dirs(Path(output_dir)) if output_dir else []
    if control.killed:  # the caller ended it on purpose: where a resume would continue
        step = saved[-1][0] if saved else tracker.step
        if training:
            sink(Finished(step, output_dir, None, stopped=True))
            return RunResult(RunStatus.STOPPED, step, output_dir)
        sink(Finished(0, "", None, stopped=True))
        return None
    if processes > 1:
        failure = launch.describe_rank_exit(list(tail), processes, checkpoint_kept=bool(saved))
    else:
        failure = describe_exit(code, list(tail), training=training, checkpoint_kept=bool(saved))
    logger.error("the engine process ended with code %s: %s", code, failure.message)
    sink(failure)
    if training:
        return RunResult(RunStatus.FAILED, tracker.step, output_dir, failure=failure)
    return None


@contextlib.contextmanager
def stop_when(should_stop: Callable[[], bool], control: RemoteControl, poll_s: float = 0.05) -> Iterator[None]:
    """Within the block, ``control.stop()`` as soon as ``should_stop()`` turns true: for a caller
    whose cancel switch is a function (``JobRunner``'s), polled from a thread of its own."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll_s):
            if should_stop():
                control.stop()
                return

    watcher = threading.Thread(target=watch, name="engine-stop-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


class _Tracker:
    """Turns the child's lines into events for the sink and remembers what the end needs."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.step = 0
        self.end: Finished | Failed | None = None  # the Finished or Failed event, once sent
        self.has_result = False
        self.result: Any = None

    def read(self, raw: bytes) -> None:
        try:
            message = _parse(raw)
            if message.get("type") == "Result":
                value = message.get("value")
                self.result = from_message(value) if isinstance(value, dict) else value
                self.has_result = True
                return
            event = from_message(message)
        except (ValueError, TypeError, AttributeError):
            logger.warning("engine process: %s", raw.decode("utf-8", "replace").rstrip())
            return
        match event:
            case RunResult():  # a result comes only as the "Result" line
                logger.warning("engine process: a result outside the result line: %s", event)
                return
            case (
                RunPlanned(start_step=step)
                | StepLogged(step=step)
                | SampleReady(step=step)
                | CheckpointSaved(step=step)
            ):
                self.step = max(self.step, step)
            case Finished(step=step):
                self.step = max(self.step, step)
                self.end = event
            case Failed():
                self.end = event
        self.sink(event)


def _parse(raw: bytes) -> Any:
    """A line of the child's; an event preceded by stray text from native code is still read."""
    try:
        return json.loads(raw)
    except ValueError:
        start = raw.find(b'{"type"')
        if start <= 0:
            raise
        logger.warning("engine process: %s", raw[:start].decode("utf-8", "replace"))
        return json.loads(raw[start:])


def _pass_on_stderr(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Echo the child's stderr on ours (the terminal, a log) and keep its last lines."""
    for raw in stream:
        line = raw.decode("utf-8", "replace")
        tail.append(line.rstrip("\n"))
        if sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line)


# Exit codes of a process the system ended for memory, and of a crash in native code. Windows
# reports NTSTATUS values (unsigned here); POSIX a negative signal number.
_MEMORY_CODES = {-9, 137, 0xC0000017, 0xC000012D}  # SIGKILL (OOM killer), NO_MEMORY, COMMITMENT_LIMIT
_CRASH_CODES = {
    -11,  # SIGSEGV
    -6,  # SIGABRT: std::terminate, failed assertions in native code
    -7,  # SIGBUS (Linux)
    -10,  # SIGBUS (macOS)
    -4,  # SIGILL: a build that needs CPU features this machine lacks
    0xC0000005,  # access violation
    0xC0000409,  # stack buffer overrun / fast fail: how abort() ends on Windows
    0xC00000FD,  # stack overflow
    0xC000001D,  # illegal instruction
    0xC0000374,  # heap corruption
}


def describe_exit(code: int, tail: list[str], training: bool = True, checkpoint_kept: bool = False) -> Failed:
    """Why the engine process ended without a result, in words, with a hint; ``tail`` is its last output."""
    if code < -255:  # a Windows status read as a signed 32-bit number
        code += 1 << 32
    process = "training process" if training else "background process"
    resume = " The last checkpoint is kept: Resume continues from it." if checkpoint_kept else ""
    details = "\n".join(tail)
    if code in _MEMORY_CODES:
        lower = (
            " or choose a smaller quantization (int8 or int4), a lower resolution or a smaller rank" if training else ""
        )
        return Failed(
            f"The {process} was stopped by the system, most likely because the computer ran out of memory.",
            f"Close other programs{lower}, then start again.{resume}",
            details,
            topic=FailureTopic.MEMORY,
        )
    if code in _CRASH_CODES:
        return Failed(
            f"The {process} crashed inside a native library.",
            "This is usually a GPU driver or library problem: update the GPU driver and try again. "
            f"The details below help to report it.{resume}",
            details,
        )
    return Failed(
        f"The {process} ended unexpectedly (exit code {code}).",
        f"The details below show its last output.{resume}",
        details,
    )
