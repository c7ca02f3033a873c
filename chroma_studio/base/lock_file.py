"""A lock file that names the process holding it.

Both the run folder's lock and the queue's lock follow one protocol: the file is created
exclusively, holds its owner as JSON (the process id and start time, and whatever else the lock
wants to say about itself), and is taken over when that owner has ended. ``LockFile`` is that
protocol; a lock says who counts as alive, who counts as itself, and what to raise when refused.

``BriefLock`` is the same file held for a moment, around one read-modify-write of a shared file:
a second process waits for it a few seconds rather than being refused at once.

Written here rather than taken from ``filelock`` or ``fcntl``: those hold an OS lock only while
the process lives and say nothing about who holds it, while both locks must tell the user which
process (and since when) is in the way.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
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


class LockTimeout(TimeoutError):
    """A brief lock stayed held by a live process for longer than it should take; ``owner`` is what
    its lock file says."""

    def __init__(self, path: Path, owner: dict[str, Any] | None, waited: float) -> None:
        self.path, self.owner = path, owner or {}
        holder = f"process {self.owner['pid']}" if self.owner.get("pid") else "another program"
        super().__init__(
            f"{holder.capitalize()} has held {path} for over {waited:g} s. Try again; if that program "
            "hangs, end it (its lock goes with it)."
        )


class BriefLock(LockFile):
    """``with BriefLock(path):`` around a change that takes milliseconds. A lock held by a live
    process is waited for up to ``timeout`` seconds, then ``LockTimeout``; one left by a process that
    has ended is taken over. Never held twice, not even by two threads of one process."""

    POLL = 0.01  # seconds between tries
    WRITING = 2.0  # a lock file younger than this that cannot be read yet is being written: held

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        super().__init__(path)
        self.timeout = timeout

    def __enter__(self) -> BriefLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.acquire()
                return self
            except LockTimeout:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(self.POLL)

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def owner(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return None  # released meanwhile
        try:
            owner = json.loads(text)
        except ValueError:  # made an instant ago and being written, or left half written by a crash
            return {} if age < self.WRITING else None
        return owner if isinstance(owner, dict) and self._alive(owner) else None

    def _is_mine(self, owner: dict[str, Any]) -> bool:
        return False  # held around one change, never entered again: another thread here must wait too

    def _refused(self, owner: dict[str, Any] | None) -> LockTimeout:
        return LockTimeout(self.path, owner, self.timeout)
