"""A run's output folder: every file in it, read and written in one place (no torch).

The engine writes the folder as it trains; the app reopens past runs from it and the CLI
exports from it. Layout::

    config.json                          the resolved settings, flat (atomic)
    metrics.jsonl                        one line per optimizer step
    log.txt                              the run's log, as the app showed it
    .chroma-studio.lock                  held while a training runs here (run_lock.py)
    samples/index.jsonl                  one line per sample image
    samples/step_NNNNNN_pK.png           sample image of prompt K at step N (atomic)
    checkpoints/step_N/state.json        a complete checkpoint has its state file; what else
                                         a checkpoint holds is training/checkpoint.py's business
    pytorch_lora_weights.safetensors     the final LoRA (diffusers / ComfyUI layout)
    chroma_lora_kohya.safetensors        the same LoRA in kohya's layout

Files the app reads may be cut short by a crash: readers skip a broken line or give ``{}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from chroma_studio.base.atomic import publish_folder, usual_mode, write_bytes_atomic, write_text_atomic
from chroma_studio.base.run_lock import RunLock

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LOG = "log.txt"
LOCK = ".chroma-studio.lock"
SAMPLES = "samples"
SAMPLE_INDEX = "index.jsonl"
CHECKPOINTS = "checkpoints"
CHECKPOINT_STATE = "state.json"
LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_FILE = "chroma_lora_kohya.safetensors"
LORA_FILES = {"diffusers": LORA_FILE, "kohya": KOHYA_FILE}  # file layout -> the final LoRA's name
_METRICS_TAIL = 8192  # bytes read from the end of metrics.jsonl: many times one record
_STEP_DIR = re.compile(r"^step_(\d+)$")


def read_json(path: str | Path) -> dict:
    """A JSON object from ``path``; {} if it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The records of a JSON-lines file; a line cut short by a crash is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record


class MetricsWriter:
    """``metrics.jsonl`` open for appending: one record per step, on disk as soon as it is written."""

    def __init__(self, path: Path) -> None:
        self.handle: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunFolder:
    """One run's output folder: the path of each of its files, and reading and writing them.

    Its reads are the module's functions of a path (below), which the app calls with a path alone.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- where things are ----------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def log_file(self) -> Path:
        return self.path / LOG

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES

    @property
    def sample_index_file(self) -> Path:
        return self.samples_dir / SAMPLE_INDEX

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"step_{step}"

    def sample_image(self, step: int, prompt_index: int) -> Path:
        return self.samples_dir / f"step_{step:06d}_p{prompt_index}.png"

    def lora_file(self, fmt: str = "diffusers", step: int | None = None) -> Path:
        """The final LoRA in layout ``fmt`` ("diffusers" or "kohya"); with ``step``, that checkpoint's export."""
        name = LORA_FILES[fmt]
        return self.path / (name if step is None else name.replace(".safetensors", f"_step_{step}.safetensors"))

    # -- the run as a whole ------------------------------------------------------------------------
    def create(self) -> None:
        """Make the folder (and its parents); OSError when it cannot be made."""
        self.path.mkdir(parents=True, exist_ok=True)

    def lock(self) -> RunLock:
        """The lock a training holds while it runs here (not yet acquired)."""
        return RunLock(self.lock_file)

    def read_config(self) -> dict:
        """The run's flat settings; {} when config.json is missing or unreadable."""
        return read_json(self.config_file)

    def write_config(self, settings: dict[str, Any]) -> None:
        write_text_atomic(self.config_file, json.dumps(settings, indent=2) + "\n")

    def is_finished(self, step: int, total_steps: int) -> bool:
        return is_finished(self.path, step, total_steps)

    # -- metrics and log ------------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        return read_metrics(self.path)

    def last_metrics_step(self) -> int:
        return last_metrics_step(self.path)

    def open_metrics(self, start: int) -> MetricsWriter:
        """metrics.jsonl for appending, keeping only the lines up to step ``start`` (a resume replays
        the rest); the file is rewritten atomically first."""
        kept = [json.dumps(r) + "\n" for r in self.read_metrics() if r["step"] <= start] if start else []
        write_text_atomic(self.metrics_file, "".join(kept))
        return MetricsWriter(self.metrics_file)

    def read_log(self, limit: int = 5000) -> list[str]:
        return read_log(self.path, limit)

    def append_log(self, lines: Iterable[str]) -> None:
        """Add whole lines (each ending in a newline) to the log; OSError when it cannot be written."""
        with open(self.log_file, "a", encoding="utf-8") as handle:
            handle.writelines(lines)

    # -- samples ----------------------------------------------------------------------------------
    def read_sample_index(self) -> list[dict]:
        return read_sample_index(self.path)

    def write_sample_image(self, step: int, prompt_index: int, png: bytes) -> Path:
        """Write one sample image (PNG bytes) atomically; its path."""
        path = self.sample_image(step, prompt_index)
        write_bytes_atomic(path, png)
        return path

    def append_sample_record(self, record: dict[str, Any]) -> None:
        """Add a sample image's record (its ``file`` relative to samples/) to the index."""
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        with open(self.sample_index_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoints(self) -> list[tuple[int, Path]]:
        return checkpoint_dirs(self.path)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def read_checkpoint_state(self, checkpoint: str | Path) -> dict:
        """A checkpoint's state.json as it is, unchecked; {} when missing or unreadable."""
        return read_json(Path(checkpoint) / CHECKPOINT_STATE)

    def start_checkpoint(self, step: int) -> Path:
        """A new hidden folder in checkpoints/ to write checkpoint ``step`` into, then to
        ``publish_checkpoint``; what earlier saves left half done is cleared first."""
        root = self.checkpoints_dir
        root.mkdir(parents=True, exist_ok=True)
        self.sweep_partial_checkpoints()
        tmp = Path(tempfile.mkdtemp(prefix=f".step_{step}.", dir=root))
        tmp.chmod(usual_mode(folder=True))  # mkdtemp makes it private
        return tmp

    def publish_checkpoint(self, tmp: Path, step: int) -> Path:
        """Put the finished folder ``tmp`` in place as checkpoint ``step`` (replacing one of that step)."""
        final = self.checkpoint_dir(step)
        publish_folder(tmp, final)
        return final

    def prune_checkpoints(self, keep: int) -> None:
        """Delete all but the newest ``keep`` checkpoints.

        Each is first renamed to the hidden ``.deleting.step_N`` and only then deleted, so a process
        ended halfway leaves no visible checkpoint missing some of its files; the next save's sweep
        removes what is left.
        """
        for _, path in self.checkpoints()[:-keep]:
            doomed = path.with_name(f".deleting.{path.name}")
            shutil.rmtree(doomed, ignore_errors=True)
            try:
                path.rename(doomed)
            except OSError:
                continue  # in use or gone: left for a later prune
            shutil.rmtree(doomed, ignore_errors=True)

    def sweep_partial_checkpoints(self) -> None:
        """Clear what a process ended in the middle of a save left in ``checkpoints/``.

        A ``.step_N.*`` folder is a save that never finished, ``.deleting.step_N`` a pruned checkpoint
        not yet gone: both removed. ``.old.step_N`` is the previous copy of step N during a swap: put
        back if step N itself is missing, else removed.
        """
        root = self.checkpoints_dir
        for entry in root.glob(".*step_*"):
            if not entry.is_dir():
                continue
            if entry.name.startswith(".old."):
                final = root / entry.name.removeprefix(".old.")
                if not final.exists():
                    entry.rename(final)
                    continue
            shutil.rmtree(entry, ignore_errors=True)


# -- reading a run folder by its path (the app lists and reopens runs this way) ------------------------


def read_metrics(run_dir: str | Path) -> list[dict]:
    """One record per training step: step, loss, lr, sigma, seconds, epoch."""
    return [r for r in read_jsonl(Path(run_dir) / METRICS) if "step" in r and "loss" in r]


def last_metrics_step(run_dir: str | Path) -> int:
    """The step of the last record in a run's metrics.jsonl (0: none), read from the file's end."""
    try:
        with open(Path(run_dir) / METRICS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _METRICS_TAIL))
            lines = handle.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):  # the first one may be cut by the seek, the last one by a crash
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and "loss" in record:
            return record["step"]
    if size <= _METRICS_TAIL:
        return 0
    records = read_metrics(run_dir)  # no whole record near the end: read it all
    return int(records[-1]["step"]) if records else 0


def read_sample_index(run_dir: str | Path) -> list[dict]:
    """One record per sample image: step, prompt_index, prompt, seed, settings, file."""
    return [r for r in read_jsonl(Path(run_dir) / SAMPLES / SAMPLE_INDEX) if "file" in r and "step" in r]


def read_log(run_dir: str | Path, limit: int = 5000) -> list[str]:
    """The last ``limit`` lines of a run's log (empty when it has none)."""
    try:
        with open(Path(run_dir) / LOG, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=limit)]
    except OSError:
        return []


def checkpoint_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (``checkpoints/step_N`` with its state file), oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and (entry / CHECKPOINT_STATE).is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def is_finished(run_dir: str | Path, step: int, total_steps: int) -> bool:
    """Whether a run that reached ``step`` of ``total_steps`` (0: not known) ended: its final LoRA is
    there and it went all the way (a stopped run writes its LoRA too)."""
    return (Path(run_dir) / LORA_FILE).is_file() and step >= (total_steps or step)
