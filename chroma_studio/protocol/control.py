"""Commands from the caller to a running job: thread-safe, polled once per step."""

from __future__ import annotations

import queue
import threading

from chroma_studio.protocol.codec import StrEnum


class Command(StrEnum):
    """What the caller can tell a running job; the engine process reads one per line."""

    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    SAMPLE = "sample"
    SAVE = "save"


class Request(StrEnum):
    """The one-off commands, queued and served at the next step boundary."""

    SAMPLE = Command.SAMPLE.value
    SAVE = Command.SAVE.value


class TrainingControl:
    """Stop, pause and one-off requests for a run in another thread.

    Stop and pause are ``threading.Event``s so the engine sees them even while the GUI's event
    loop is busy; one-off requests ("sample now", "save now") queue up and are served at the next
    step boundary.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()

    # -- caller side --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to save a checkpoint and end; also releases a pause."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def request_sample(self) -> None:
        self._requests.put(Request.SAMPLE)

    def request_save(self) -> None:
        self._requests.put(Request.SAVE)

    def obey(self, command: Command) -> None:
        """Carry out ``command`` (as it came from the caller over a pipe)."""
        match command:
            case Command.STOP:
                self.stop()
            case Command.PAUSE:
                self.pause()
            case Command.RESUME:
                self.resume()
            case Command.SAMPLE:
                self.request_sample()
            case Command.SAVE:
                self.request_save()

    # -- engine side --------------------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = None) -> None:
        """Block while paused (until resumed or stopped)."""
        self._running.wait(timeout)

    def take_requests(self) -> set[Request]:
        """Every request queued since the last call (duplicates collapse)."""
        taken: set[Request] = set()
        while True:
            try:
                taken.add(self._requests.get_nowait())
            except queue.Empty:
                return taken
