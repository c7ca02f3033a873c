"""Reading a run's output folder without the engine (no torch): metrics, samples, checkpoints.

The engine writes these files; the GUI reopens past runs from them and the CLI exports from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
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
