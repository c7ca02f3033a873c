"""The queue of runs: training configs lined up to run one after another, in one JSON file.

Each entry is a snapshot of a flat config (``TrainingConfig.to_dict()``, paths already absolute)
taken when it was added, so editing the project or the config file afterwards does not change
what the queue trains. The app and ``chroma-studio queue`` share the file (``queue.json`` in the
data folder); every change reads the file again, applies itself and writes it back atomically,
under a brief lock (``queue.json.lock``), so the other program's changes are kept, even one made at
the same instant, and a crash never leaves half a file.

Statuses: an entry waits, runs, then ends finished, failed or stopped (stopped by hand: it is not
run again). A runner that is stopped itself (Ctrl-C, the app closing) puts its running entry back
as "waiting (resume)" at the head of the line: the engine saved a checkpoint, and the next run
of the queue continues it (``resume_from_checkpoint: latest``) before anything else.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from chroma_studio.base import run_folder
from chroma_studio.base.atomic import write_text_atomic
from chroma_studio.base.lock_file import BriefLock, LockTimeout
from chroma_studio.base.paths import data_dir
from chroma_studio.base.queue_lock import QueueLock

QUEUE_FORMAT = 1
QUEUE_FILE = "queue.json"
LOCK_FILE = "queue.lock"  # held by the runner of the queue (see ``queue_lock``)
CHANGE_WAIT = 5.0  # seconds a change waits for another program's change to the file


class EntryStatus(str, Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


ENDED = frozenset({EntryStatus.FINISHED, EntryStatus.FAILED, EntryStatus.STOPPED})


class QueueError(ValueError):
    """A change the queue refuses (a duplicate output folder, an unknown id); the message says why."""


class QueueFileError(QueueError):
    """The queue file cannot be read; it is left as it is (nothing is overwritten)."""


def default_queue_path() -> Path:
    return data_dir() / QUEUE_FILE


@dataclass
class QueueEntry:
    id: int
    name: str
    config: dict[str, Any]  # the flat config, paths absolute
    status: EntryStatus = EntryStatus.WAITING
    resume: bool = False  # stopped by its runner with a checkpoint: continues from it
    added: float = field(default_factory=time.time)
    started: float = 0.0
    ended: float = 0.0
    step: int = 0
    result: str = ""  # the LoRA file of a finished run, or why it failed

    @property
    def output_dir(self) -> str:
        return str(self.config.get("output_dir") or "")

    @property
    def label(self) -> str:
        """The status in words: "waiting (resume)", "failed", …"""
        return "waiting (resume)" if self.status is EntryStatus.WAITING and self.resume else self.status.value

    def run_config(self) -> dict[str, Any]:
        """The config to train: a resumed entry continues from its latest checkpoint."""
        return {**self.config, "resume_from_checkpoint": "latest"} if self.resume else dict(self.config)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: Any) -> QueueEntry:
        if not isinstance(data, dict):
            raise ValueError(f"an entry is a JSON object, not {data!r}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if not isinstance(values.get("id"), int) or not isinstance(values.get("config"), dict):
            raise ValueError(f"an entry needs a whole-number id and a config object: {data!r}")
        values["status"] = EntryStatus(values.get("status", "waiting"))
        values["name"] = str(values.get("name") or f"run {values['id']}")
        return cls(**values)


class RunQueue:
    """The queue in ``path``: read when made (unless ``load`` is False), and again before each change."""

    def __init__(self, path: str | os.PathLike[str] | None = None, load: bool = True) -> None:
        self.path = Path(path) if path is not None else default_queue_path()
        self.entries: list[QueueEntry] = []
        self.next_id = 1
        if load:
            self.reload()

    def lock(self, runner: str) -> QueueLock:
        """The lock a runner of this queue holds (see ``queue_lock``)."""
        return QueueLock(self.path.with_name(LOCK_FILE), runner)

    # -- reading and writing ------------------------------------------------------------------
    def reload(self) -> None:
        """Read the file (none: an empty queue). Raises QueueFileError naming the file and what to do."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.entries, self.next_id = [], 1
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(f"cannot be read: {exc}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("chroma_studio_queue") != QUEUE_FORMAT:
                raise ValueError("it is not a Chroma Studio queue file of this version")
            entries = [QueueEntry.from_dict(item) for item in data.get("entries", [])]
        except (ValueError, TypeError) as exc:
            raise self._unreadable(f"is damaged ({exc})") from None
        self.entries = entries
        self.next_id = max([int(data.get("next_id") or 1), *(e.id + 1 for e in entries)])

    def _unreadable(self, why: str) -> QueueFileError:
        return QueueFileError(
            f"The queue file {self.path} {why}. It was left as it is: move it aside (or delete it) "
            "to start an empty queue."
        )

    def save(self) -> None:
        data = {
            "chroma_studio_queue": QUEUE_FORMAT,
            "next_id": self.next_id,
            "entries": [entry.to_dict() for entry in self.entries],
        }
        write_text_atomic(self.path, json.dumps(data, indent=2) + "\n")

    @contextmanager
    def _change(self) -> Iterator[None]:
        """Read the file again, let the caller change the entries, write it back: all under the
        file's brief lock, so a change made by another program at the same instant is not lost."""
        try:
            with BriefLock(self.path.with_name(self.path.name + ".lock"), timeout=CHANGE_WAIT):
                self.reload()
                yield
                self.save()
        except LockTimeout as exc:
            raise QueueError(f"The queue cannot be changed now: {exc}") from None

    # -- looking ---------------------------------------------------------------------------------
    def get(self, entry_id: int) -> QueueEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise QueueError(f"The queue has no entry {entry_id}; `chroma-studio queue list` shows the ids.")

    def waiting(self) -> list[QueueEntry]:
        return [e for e in self.entries if e.status is EntryStatus.WAITING]

    def next_entry(self) -> QueueEntry | None:
        """The entry to run next: an interrupted one first, then the first waiting one."""
        waiting = self.waiting()
        return next((e for e in waiting if e.resume), waiting[0] if waiting else None)

    def interrupted(self) -> list[QueueEntry]:
        return [e for e in self.entries if e.status is EntryStatus.WAITING and e.resume]

    # -- changing --------------------------------------------------------------------------------
    def add(self, config: dict[str, Any], name: str = "") -> QueueEntry:
        """Add a snapshot of ``config`` at the end. Refused (QueueError) when its ``output_dir`` is
        missing, is another entry's, or already holds a run (checkpoints or a LoRA file)."""
        output_dir = str(config.get("output_dir") or "")
        if not output_dir or not os.path.isabs(output_dir):
            raise QueueError(f"The config's output_dir must be an absolute folder, not {output_dir!r}.")
        folder = Path(output_dir)
        with self._change():
            for entry in self.entries:
                if Path(entry.output_dir) == folder:
                    raise QueueError(
                        f"Entry {entry.id} ({entry.name}) already trains into {output_dir}; "
                        "give this run another output_dir."
                    )
            if run_folder.checkpoint_dirs(folder) or (folder / run_folder.LORA_FILE).is_file():
                raise QueueError(
                    f"{output_dir} already holds a run (checkpoints or a LoRA file); give this run another "
                    "output_dir, or resume that run with `chroma-studio train CONFIG --resume`."
                )
            entry = QueueEntry(self.next_id, name or folder.name, dict(config))
            self.next_id += 1
            self.entries.append(entry)
        return entry

    def remove(self, entry_id: int) -> QueueEntry:
        with self._change():
            entry = self.get(entry_id)
            if entry.status is EntryStatus.RUNNING:
                raise QueueError(f"Entry {entry_id} ({entry.name}) is running; stop the queue first.")
            self.entries.remove(entry)
        return entry

    def move(self, entry_id: int, offset: int) -> None:
        """Move an entry ``offset`` places (negative: earlier), within the list's ends."""
        with self._change():
            entry = self.get(entry_id)
            index = self.entries.index(entry)
            target = min(max(index + offset, 0), len(self.entries) - 1)
            self.entries.insert(target, self.entries.pop(index))

    def mark_started(self, entry_id: int) -> QueueEntry:
        with self._change():
            entry = self.get(entry_id)
            entry.status, entry.started, entry.ended = EntryStatus.RUNNING, time.time(), 0.0
        return entry

    def mark_ended(self, entry_id: int, status: EntryStatus, step: int = 0, result: str = "") -> QueueEntry:
        """A run that ended (finished, failed, or stopped by hand)."""
        with self._change():
            entry = self.get(entry_id)
            entry.status, entry.ended = EntryStatus(status), time.time()
            entry.step, entry.result, entry.resume = step or entry.step, result, False
        return entry

    def mark_interrupted(self, entry_id: int, step: int = 0) -> QueueEntry:
        """Its runner stopped it (checkpoint saved): back to waiting, first in line, to resume."""
        with self._change():
            entry = self.get(entry_id)
            entry.status, entry.resume, entry.step = EntryStatus.WAITING, True, step or entry.step
            self.entries.remove(entry)
            first = next((i for i, e in enumerate(self.entries) if e.status is EntryStatus.WAITING), len(self.entries))
            self.entries.insert(first, entry)
        return entry

    def recover(self) -> list[QueueEntry]:
        """Entries left "running" by a runner that ended without a word (a crash): interrupted.
        Call only while holding the lock, or knowing no runner holds it."""
        stale = [e for e in self.entries if e.status is EntryStatus.RUNNING]
        for entry in stale:
            self.mark_interrupted(entry.id)
        return stale
