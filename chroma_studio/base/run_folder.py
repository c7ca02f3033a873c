"""Reading a run's output folder without the engine (no torch): metrics, samples, checkpoints.

The engine writes these files; the GUI reopens past runs from them and the CLI exports from them.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LOG = "log.txt"  # the run's log, as the app showed it
SAMPLES = "samples"
LORA_FILE = "pytorch_lora_weights.safetensors"  # the final LoRA (training/export.py)
_METRICS_TAIL = 8192  # bytes read from the end of metrics.jsonl: many times one record
SAMPLE_INDEX = "index.jsonl"
CHECKPOINTS = "checkpoints"
CHECKPOINT_STATE = "state.json"
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


def read_metrics(run_dir: str | Path) -> list[dict]:
    """One record per training step: step, loss, lr, sigma, seconds, epoch."""
    return [r for r in read_jsonl(Path(run_dir) / METRICS) if "step" in r and "loss" in r]


def read_sample_index(run_dir: str | Path) -> list[dict]:
    """One record per sample image: step, prompt_index, prompt, seed, settings, file."""
    return [r for r in read_jsonl(Path(run_dir) / SAMPLES / SAMPLE_INDEX) if "file" in r and "step" in r]


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


def read_log(run_dir: str | Path, limit: int = 5000) -> list[str]:
    """The last ``limit`` lines of a run's log (empty when it has none)."""
    try:
        with open(Path(run_dir) / LOG, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=limit)]
    except OSError:
        return []


def last_metrics_step(run_dir: str | Path) -> int:
    """The step of the last record in a run's metrics.jsonl (0: none), read from the file's end."""
    path = Path(run_dir) / METRICS
    try:
        with open(path, "rb") as handle:
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
