"""One training at a time per output folder.

A run that was asked to stop still writes its checkpoint and LoRA, and the engine process does so
even when the app that started it has gone. A second run in the same folder meanwhile (Resume
pressed at once in a restarted app, or a second ``chroma-studio train``) would load a checkpoint
the first one is about to prune and share the GPU with it. So the engine holds a lock file in
the folder while it runs; the lock of a process that no longer exists is taken over.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from chroma_studio.base.lock_file import LockFile


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


class RunLock(LockFile):
    """``acquire()`` or raise RunFolderInUse naming the other process; ``release()`` at the end.

    ``path`` is the lock file; the folder it names in errors is the one that holds it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.folder = self.path.parent

    def _refused(self, owner: dict[str, Any] | None) -> RunFolderInUse:
        if owner is None:
            return RunFolderInUse(self.folder)
        since = time.strftime("%H:%M", time.localtime(float(owner["started"])))
        return RunFolderInUse(self.folder, owner["pid"], since)
