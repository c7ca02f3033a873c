"""One runner per queue of runs: a lock file that says who runs it.

The app and ``chroma-studio queue run`` share one queue file. Two runners at once would start two
trainings on the same GPU, so the one that runs the queue holds ``queue.lock`` beside it, naming
its process, its machine and what it is ("the app" or "the command line"). A second runner reads
that and says who is running the queue instead of starting. The lock of a process that has ended
(on this machine) is taken over; one held on another machine (a queue in a shared folder) is
taken to be alive.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from chroma_studio.base.lock_file import LockFile, process_alive, this_process

APP = "the app"
COMMAND_LINE = "the command line"


class QueueBusy(Exception):
    """The queue is run by someone else; ``owner`` is what their lock file says."""

    def __init__(self, owner: dict[str, Any] | None, path: Path) -> None:
        self.owner = owner or {}
        self.path = path
        super().__init__(describe_owner(self.owner) if owner else f"Cannot take the queue's lock file {path}.")


def describe_owner(owner: dict[str, Any]) -> str:
    """Who runs the queue, in a sentence: "The queue is being run by the command line (process 4242
    on studio-pc, since 08:12)." """
    since = time.strftime("%H:%M", time.localtime(float(owner.get("since") or 0)))
    where = f" on {owner['host']}" if owner.get("host") else ""
    return (
        f"The queue is being run by {owner.get('runner') or 'another program'} "
        f"(process {owner.get('pid', '?')}{where}, since {since})."
    )


class QueueLock(LockFile):
    """``acquire()`` or raise ``QueueBusy`` naming the runner; ``release()`` at the end."""

    def __init__(self, path: str | os.PathLike[str], runner: str) -> None:
        super().__init__(path)
        self.runner = runner

    def held_by_other(self) -> dict[str, Any] | None:
        owner = self.owner()
        return None if owner is None or self._is_mine(owner) else owner

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().acquire()

    def _me(self) -> dict[str, Any]:
        return {**this_process(), "host": socket.gethostname(), "runner": self.runner, "since": time.time()}

    def _alive(self, owner: dict[str, Any]) -> bool:
        if owner.get("host") and owner["host"] != socket.gethostname():
            return True  # another machine's process cannot be checked from here
        return process_alive(owner)

    def _is_mine(self, owner: dict[str, Any]) -> bool:
        return owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()

    def _refused(self, owner: dict[str, Any] | None) -> QueueBusy:
        return QueueBusy(owner, self.path)
