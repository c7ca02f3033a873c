"""Resumable checkpoints: ``output_dir/checkpoints/step_N/``.

A checkpoint holds the LoRA (fp32), the optimizer, the LR schedule, the step, the RNG states
and what the run was (model, rank, alpha, targets) so an incompatible resume is refused. The
data order needs no state of its own: it is a function of the seed and the step.

It is written into a hidden temporary folder that is renamed into place only when complete,
so a crash or a full disk while saving leaves the previous checkpoint intact and usable.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from chroma_studio.atomic import usual_mode
from chroma_studio.runs import CHECKPOINT_STATE as STATE
from chroma_studio.runs import CHECKPOINTS, checkpoint_dirs

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message says why and what to do."""


@dataclass(frozen=True)
class Identity:
    """What must match for a checkpoint to resume into this run."""

    model: str
    rank: int
    alpha: float
    targets: str

    def mismatches(self, other: dict[str, Any]) -> list[str]:
        names = {"model": "base model", "rank": "lora_rank", "alpha": "lora_alpha", "targets": "flux_lora_target"}
        return [
            f"{names[k]} was {other.get(k)!r}, now {getattr(self, k)!r}"
            for k in names
            if other.get(k) != getattr(self, k)
        ]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    dirs = checkpoint_dirs(output_dir)
    return dirs[-1][1] if dirs else None


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    lora_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    identity: Identity,
    scaler: Any = None,
    extra: dict[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically, then prune to the newest ``keep``."""
    root = Path(output_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    sweep_partial_checkpoints(root)
    final = root / f"step_{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step}.", dir=root))
    tmp.chmod(usual_mode(folder=True))  # mkdtemp makes it private
    try:
        save_file(lora_state, str(tmp / "lora.safetensors"))
        training = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        (tmp / "training_state.pt").write_bytes(_torch_bytes(training))
        state = {"step": step, "identity": identity.__dict__, **(extra or {})}
        (tmp / STATE).write_text(json.dumps(state, indent=2))
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():  # saving the same step twice: swap, never leave a gap
            old = root / f".old.step_{step}"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep:
        for _, path in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)
    return final


def sweep_partial_checkpoints(root: Path) -> None:
    """Clear what a process ended in the middle of a save left in ``checkpoints/``.

    A ``.step_N.*`` folder is a save that never finished: removed. ``.old.step_N`` is the previous
    copy of step N during a swap: put back if step N itself is missing, else removed.
    """
    for entry in root.glob(".*step_*"):
        if not entry.is_dir():
            continue
        if entry.name.startswith(".old."):
            final = root / entry.name.removeprefix(".old.")
            if not final.exists():
                entry.rename(final)
                continue
        shutil.rmtree(entry, ignore_errors=True)


@dataclass
class LoadedCheckpoint:
    path: Path
    step: int
    lora_state: dict[str, torch.Tensor]
    training: dict[str, Any]
    state: dict[str, Any]


def load_checkpoint(path: str | Path, identity: Identity) -> LoadedCheckpoint:
    """Read a checkpoint and check that it fits this run."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist. Give a checkpoints/step_N folder of a run, or its output folder."
        )
    if path.name == CHECKPOINTS or (path / CHECKPOINTS).is_dir():
        latest = latest_checkpoint(path.parent if path.name == CHECKPOINTS else path)
        if latest is None:
            raise CheckpointError(f"No complete checkpoint in {path}.")
        path = latest
    state_file = path / STATE
    if not state_file.is_file():
        raise CheckpointError(f"{path} is not a checkpoint (no {STATE}). Choose a checkpoints/step_N folder.")
    try:
        state = json.loads(state_file.read_text())
        lora_state = load_file(str(path / "lora.safetensors"))
        training = torch.load(path / "training_state.pt", map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable part (truncated file, bad header, bad pickle) means damaged
        raise CheckpointError(f"Checkpoint {path} is damaged ({exc}). Resume from an earlier one.") from exc
    problems = identity.mismatches(state.get("identity", {}))
    if problems:
        raise CheckpointError(
            f"Checkpoint {path.name} was trained with other settings: {'; '.join(problems)}. "
            "Resume with the settings it was made with, or start a new run in another output folder."
        )
    return LoadedCheckpoint(path=path, step=int(state["step"]), lora_state=lora_state, training=training, state=state)
