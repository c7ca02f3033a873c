"""A lock file that names the process holding it.

Both the run folder's lock and the queue's lock follow one protocol: the file is created
exclusively, holds its owner as JSON (the process id and start time, and whatever else the lock
wants to say about itself), and is taken over when that owner has ended. ``LockFile`` is that
protocol; a lock says who counts as alive, who counts as itself, and what to raise when refused.

Written here rather than taken from ``filelock`` or ``fcntl``: those hold an OS lock only while
the process lives and say nothing about who holds it, while both locks must tell the user which
process (and since when) is in the way.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import psutil


def this_process() -> dict[str, Any]:
    """This process as an owner: its id and start time (the pair tells a reused pid apart)."""
    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def process_alive(owner: dict[str, Any]) -> bool:
    """Whether the process an owner names still runs on this machine."""
    try:
        process = psutil.Process(int(owner["pid"]))
        return bool(abs(process.create_time() - float(owner["started"])) < 1.0)  # not a reused pid
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


class LockFile:
    """``acquire()`` or raise what ``_refused`` builds; ``release()`` at the end.

    Subclasses may override ``_me`` (what the file says), ``_alive`` and ``_is_mine`` (how an
    owner read back is judged), and must override ``_refused``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.held = False

    def owner(self) -> dict[str, Any] | None:
        """What the lock file says, when a live process holds it (this one included); else None."""
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # none, or half written by a process that died while writing it
        return owner if isinstance(owner, dict) and self._alive(owner) else None

    def acquire(self) -> None:
        me = self._me()
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self.owner()
                if owner is not None and self._is_mine(owner):
                    break  # this process holds it already
                if owner is not None:
                    raise self._refused(owner) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # left by a process that has ended
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
            break
        else:
            raise self._refused(None)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _me(self) -> dict[str, Any]:
        return this_process()

    def _alive(self, owner: dict[str, Any]) -> bool:
        return process_alive(owner)

    def _is_mine(self, owner: dict[str, Any]) -> bool:
        return bool(owner.get("pid") == os.getpid())

    def _refused(self, owner: dict[str, Any] | None) -> Exception:
        """The error for a lock held by the live ``owner``, or that could not be taken (None)."""
        raise NotImplementedError
