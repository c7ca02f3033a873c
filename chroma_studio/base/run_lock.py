"""One training at a time per output folder.

A run that was asked to stop still writes its checkpoint and LoRA, and the engine process does so
even when the app that started it has gone. A second run in the same folder meanwhile (Resume
pressed at once in a restarted app, or a second ``chroma-studio train``) would load a checkpoint
the first one is about to prune and share the GPU with it. So the engine holds a lock file in
the folder while it runs; the lock of a process that no longer exists is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import psutil


class RunFolderInUse(Exception):
    """The run folder's lock is held by another live process (``owner_pid``), or cannot be taken."""

    def __init__(self, folder: Path, owner_pid: int | None = None, since: str = "") -> None:
        if owner_pid is None:
            message = f"Cannot lock {folder} for training."
        else:
            message = f"Another training is still using {folder} (process {owner_pid}, running since {since})."
        super().__init__(message)
        self.folder = folder
        self.owner_pid = owner_pid
        self.since = since


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "started": psutil.Process().create_time()}


def _owner_alive(owner: dict[str, Any]) -> bool:
    try:
        process = psutil.Process(int(owner["pid"]))
        return abs(process.create_time() - float(owner["started"])) < 1.0  # not a reused pid
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


class RunLock:
    """``acquire()`` or raise RunFolderInUse naming the other process; ``release()`` at the end.

    ``path`` is the lock file; the folder it names in errors is the one that holds it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.folder = self.path.parent
        self.held = False

    def acquire(self) -> None:
        me = _this_process()
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner.get("pid") == me["pid"]:
                    break  # this process holds it already
                if owner is not None and _owner_alive(owner):
                    since = time.strftime("%H:%M", time.localtime(float(owner["started"])))
                    raise RunFolderInUse(self.folder, owner["pid"], since) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # left by a process that has ended
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
            break
        else:
            raise RunFolderInUse(self.folder)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _owner(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable or half written: treated as left over
