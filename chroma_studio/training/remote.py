"""Run an engine job in its own process (``child.py``) and hear its events as if it ran here.

``run_in_process(job, sink, control)`` starts ``python -m chroma_studio.training.child``, sends the
job, turns each line the child writes back into the event dataclass, hands it to ``sink``, and
returns the job's result. ``RemoteControl`` is a ``TrainingControl`` whose commands also reach
the child. Nothing here imports torch, so the desktop app's process never loads it.

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
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from chroma_studio.logs import is_verbose
from chroma_studio.training.control import Request, TrainingControl
from chroma_studio.training.events import CheckpointSaved, Event, Failed, RunResult, Sink, from_message

logger = logging.getLogger(__name__)

CHILD_MODULE = "chroma_studio.training.child"
STDERR_LINES_KEPT = 60


class RemoteControl(TrainingControl):
    """A ``TrainingControl`` that forwards every command to the child process once attached.

    Commands given before the child is up are replayed when it attaches; commands after it has
    ended are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._stream: IO[bytes] | None = None

    def stop(self) -> None:
        super().stop()
        self._send("stop")

    def pause(self) -> None:
        super().pause()
        self._send("pause")

    def resume(self) -> None:
        super().resume()
        self._send("resume")

    def request_sample(self) -> None:
        if not self._send("sample"):
            super().request_sample()  # replayed on attach

    def request_save(self) -> None:
        if not self._send("save"):
            super().request_save()

    def attach(self, stream: IO[bytes]) -> None:
        with self._lock:
            self._stream = stream
        if self.stop_requested:
            self._send("stop")
        elif self.paused:
            self._send("pause")
        for request in self.take_requests():
            self._send("sample" if request is Request.SAMPLE else "save")

    def detach(self) -> None:
        with self._lock:
            self._stream = None

    def _send(self, command: str) -> bool:
        """True when the command was written to the child."""
        with self._lock:
            if self._stream is None:
                return False
            try:
                self._stream.write(command.encode("ascii") + b"\n")
                self._stream.flush()
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


def run_in_process(
    job: dict[str, Any],
    sink: Sink,
    control: RemoteControl | None = None,
    environment: dict[str, str] | None = None,
) -> Any:
    """Run ``job`` (see ``child.py``) in a new process; events go to ``sink``; returns its result.

    For a ``train`` job the result is a ``RunResult`` (status "failed" when the process died);
    for other jobs it is the job's value, or None when it failed (a ``Failed`` event says why).
    """
    control = control or RemoteControl()
    env = {**os.environ, **{key: value for key, value in (environment or {}).items() if value}}
    env["PYTHONIOENCODING"] = "utf-8"
    process = subprocess.Popen(
        child_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console window on Windows
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
    reader = threading.Thread(target=_pass_on_stderr, args=(process.stderr, tail), name="engine-stderr", daemon=True)
    reader.start()
    tracker = _Tracker(sink)
    try:
        with contextlib.suppress(OSError):  # a child that died at once is reported below
            process.stdin.write(json.dumps({**job, "verbose": is_verbose()}).encode("utf-8") + b"\n")
            process.stdin.flush()
        control.attach(process.stdin)
        for raw in process.stdout:
            tracker.read(raw)
    except BaseException:
        process.kill()
        raise
    finally:
        control.detach()
        code = process.wait()
        reader.join()
        for stream in (process.stdin, process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    if tracker.has_result:
        return tracker.result
    training = job.get("job") == "train"
    failure = describe_exit(code, list(tail), training=training, checkpoint_kept=tracker.checkpoints > 0)
    logger.error("the engine process ended with code %s: %s", code, failure.message)
    sink(failure)
    if training:
        output_dir = str(job.get("config", {}).get("output_dir", ""))
        return RunResult("failed", tracker.step, output_dir, failure=failure)
    return None


class _Tracker:
    """Turns the child's lines into events for the sink and remembers what the end needs."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.step = 0
        self.checkpoints = 0
        self.has_result = False
        self.result: Any = None

    def read(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            if message.get("type") == "Result":
                value = message.get("value")
                self.result = from_message(value) if isinstance(value, dict) else value
                self.has_result = True
                return
            event: Event = from_message(message)  # type: ignore[assignment]
        except (ValueError, TypeError, AttributeError):
            logger.warning("engine process: %s", raw.decode("utf-8", "replace").rstrip())
            return
        step = getattr(event, "step", None)
        if isinstance(step, int):
            self.step = max(self.step, step)
        self.checkpoints += isinstance(event, CheckpointSaved)
        self.sink(event)


def _pass_on_stderr(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Echo the child's stderr on ours (the terminal, a log) and keep its last lines."""
    for raw in stream:
        line = raw.decode("utf-8", "replace")
        tail.append(line.rstrip("\n"))
        if sys.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(line)


def describe_exit(code: int, tail: list[str], training: bool = True, checkpoint_kept: bool = False) -> Failed:
    """Why the engine process ended without a result, in words, with a hint; ``tail`` is its last output."""
    process = "training process" if training else "background process"
    resume = " The last checkpoint is kept: Resume continues from it." if checkpoint_kept else ""
    details = "\n".join(tail)
    if code in (-getattr(signal, "SIGKILL", 9), 137):
        return Failed(
            f"The {process} was stopped by the system, most likely because the computer ran out of memory.",
            "Close other programs, or choose a smaller quantization (int8 or int4), a lower resolution or a "
            "smaller rank, then start again." + resume,
            details,
        )
    if code in (-getattr(signal, "SIGSEGV", 11), 0xC0000005, -1073741819):
        return Failed(
            f"The {process} crashed inside a native library.",
            "This is usually a GPU driver or library problem: update the GPU driver and try again. "
            "The details below help to report it." + resume,
            details,
        )
    return Failed(
        f"The {process} ended unexpectedly (exit code {code}).",
        "The details below show its last output." + resume,
        details,
    )
