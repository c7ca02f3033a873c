"""Converting checkpoints of format 1, whose training state is a pickle (``training_state.pt``).

Training never reads such a file: a pickle can run any code it names. The user converts a
checkpoint explicitly (``chroma-studio checkpoint convert``), and even then the file is read
with torch's restricted loader (``weights_only=True``), which builds only tensors and plain
containers and refuses everything else; a file it refuses was not written by Chroma Studio.

The state is then written in format 2 into a copy of the folder, read back and compared with
what was loaded, and the copy replaces the folder the way a save does (a crash at any point
leaves the old folder or the new one). The ``.pt`` file is not carried over: the new files hold
all of it, and a pickle left in the folder would only wait for some tool to load it.
"""

from __future__ import annotations

import json
import pickle  # for its exception class only: nothing here unpickles without torch's restrictions
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chroma_studio.base.atomic import publish_folder, usual_mode
from chroma_studio.base.run_folder import CHECKPOINT_STATE as STATE
from chroma_studio.base.run_folder import CHECKPOINTS, RunFolder
from chroma_studio.training.checkpoint import (
    FORMAT,
    LEGACY_STATE,
    CheckpointError,
    damaged,
    read_state,
    read_training_state,
)
from chroma_studio.training.training_state import TrainingStateError, check_structure, write_training_state


@dataclass(frozen=True)
class Converted:
    folder: Path
    changed: bool  # False: it was in the current format already


def checkpoints_to_convert(path: str | Path) -> list[Path]:
    """The checkpoint folder ``path``, or every checkpoint of a run folder (or its ``checkpoints``)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist. Give a checkpoints/step_N folder or a run's output folder.")
    if (path / STATE).is_file():
        return [path]
    run = path.parent if path.name == CHECKPOINTS else path
    found = [folder for _, folder in RunFolder(run).checkpoints()]
    if not found:
        raise CheckpointError(f"{path} holds no checkpoint. Give a checkpoints/step_N folder or a run's output folder.")
    return found


def convert_checkpoint(folder: Path) -> Converted:
    """Rewrite one format-1 checkpoint in format 2, in place; a current one is left as it is."""
    state = read_state(folder)
    if state.get("format") == FORMAT:
        return Converted(folder, changed=False)
    if "format" in state:
        raise CheckpointError(f"{folder / STATE} says format {state['format']!r}; only format 1 can be converted.")
    training = load_restricted(folder / LEGACY_STATE)
    try:
        check_structure(training, folder)
    except TrainingStateError as exc:  # name the file it came from
        raise CheckpointError(damaged(folder / LEGACY_STATE, exc.problem)) from exc
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))  # swept if a crash leaves it
    try:
        tmp.chmod(usual_mode(folder=True))
        for entry in folder.iterdir():
            if entry.name != LEGACY_STATE and entry.is_file():
                shutil.copy2(entry, tmp / entry.name)
        try:
            write_training_state(tmp, training)
        except TypeError as exc:  # a value that only pickle could store: not from Chroma Studio
            raise CheckpointError(damaged(folder / LEGACY_STATE, str(exc))) from exc
        (tmp / STATE).write_text(json.dumps({**state, "format": FORMAT}, indent=2))
        if not _same(read_training_state(tmp), training):
            raise CheckpointError(f"Converting {folder} did not reproduce its state exactly; it was left unchanged.")
        publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Converted(folder, changed=True)


def load_restricted(file: Path) -> dict[str, Any]:
    """A format-1 training state through torch's restricted unpickler (tensors and plain values only)."""
    if not file.is_file():
        raise CheckpointError(damaged(file, "the file is missing"))
    try:
        training = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))  # torch names the first thing it refused
        what = f" (it names {named.group(1)})" if named else ""
        raise CheckpointError(
            f"{file} was refused: it holds more than tensors and plain values{what}, so Chroma Studio "
            "did not write it, or it was altered. "
            "Nothing in it was run and nothing was changed. Do not resume from it; start a new run."
        ) from exc
    except Exception as exc:  # a short or garbled file: torch and zipfile raise many kinds
        raise CheckpointError(damaged(file, f"it cannot be read ({exc})")) from exc
    return training


def _same(a: Any, b: Any) -> bool:
    """Equal trees, tensors bit for bit (dtype and shape too), tuples still tuples."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
        )
    if isinstance(a, dict) and isinstance(b, dict):  # an OrderedDict read back as a dict is the same state
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b  # NaN
    return a == b
