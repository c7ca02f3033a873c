"""Resumable checkpoints: ``output_dir/checkpoints/step_N/``.

A checkpoint holds the LoRA (fp32), the optimizer, the LR schedule, the step, the RNG states
and what the run was (model, rank, alpha, targets) so an incompatible resume is refused. The
data order needs no state of its own: it is a function of the seed and the step.

Files (format 2)::

    state.json                  {"format": 2, "step": N, "identity": {model, rank, alpha, targets}}
    lora.safetensors            the LoRA, peft key names without the adapter name, float32
    training_state.safetensors  every tensor of the optimizer, schedule, scaler and RNG states
    training_state.json         the rest of those states, pointing at its tensors by name

Nothing here is a pickle. ``torch.save`` is not used because loading its files unpickles them,
and a pickle can run any code it names: a checkpoint folder someone shares would run it on
resume. How the training state becomes JSON + safetensors is in ``training_state.py``. Format 1
kept that state in a pickle (``training_state.pt``); such a checkpoint is refused with advice,
and only the explicit ``chroma-studio checkpoint convert`` reads the file, with torch's
restricted loader (``legacy_checkpoint.py``).

Everything read is checked before it is used, and a problem is a ``CheckpointError`` naming the
file: a damaged or altered checkpoint never half-loads into a run, and export never writes a
LoRA whose shapes contradict its header.

It is written into a hidden temporary folder that is renamed into place only when complete,
so a crash or a full disk while saving leaves the previous checkpoint intact and usable.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from chroma_studio.base.run_folder import CHECKPOINT_STATE as STATE
from chroma_studio.base.run_folder import CHECKPOINTS, RunFolder
from chroma_studio.training import training_state
from chroma_studio.training.training_state import TrainingStateError, write_training_state

logger = logging.getLogger(__name__)

FORMAT = 2  # state.json "format"; absent in format 1 (training_state.pt)
LORA = "lora.safetensors"
TRAINING_TENSORS = training_state.TENSORS_FILE
TRAINING_JSON = training_state.JSON_FILE
LEGACY_STATE = "training_state.pt"
_LORA_SUFFIXES = (".lora_A.weight", ".lora_B.weight")
_USE_EARLIER = "Use an earlier checkpoint of the run, or start a new run."


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


# -- writing ------------------------------------------------------------------------------------------


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
    folder = RunFolder(output_dir)
    tmp = folder.start_checkpoint(step)
    try:
        save_file(lora_state, str(tmp / LORA))
        training = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        write_training_state(tmp, training)
        state = {"format": FORMAT, "step": step, "identity": identity.__dict__, **(extra or {})}
        (tmp / STATE).write_text(json.dumps(state, indent=2))
        final = folder.publish_checkpoint(tmp, step)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep:
        folder.prune_checkpoints(keep)
    return final


# -- reading --------------------------------------------------------------------------------------------


@dataclass
class LoadedCheckpoint:
    path: Path
    step: int
    lora_state: dict[str, torch.Tensor]
    training: dict[str, Any]
    state: dict[str, Any]


def load_checkpoint(
    path: str | Path,
    identity: Identity,
    *,
    live_lora: Mapping[str, torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> LoadedCheckpoint:
    """Read a checkpoint and check that it fits this run.

    With ``live_lora`` (the model's ``get_lora_state``) the LoRA must have exactly its keys,
    shapes and float32; with ``optimizer`` the optimizer state must hold its parameters.
    """
    path = resolve_checkpoint(path)
    state = read_state(path)
    version = state.get("format")
    if version is None:
        if (path / LEGACY_STATE).exists():
            raise CheckpointError(legacy_message(path))
        raise CheckpointError(damaged(path / STATE, f"it has no 'format', and there is no {LEGACY_STATE} either"))
    if _is_int(version) and version > FORMAT:
        raise CheckpointError(
            f"{path / STATE} says format {version}; this Chroma Studio reads format {FORMAT}. "
            "Update Chroma Studio to resume it, or start a new run."
        )
    if version != FORMAT:
        raise CheckpointError(damaged(path / STATE, f"'format' is {version!r}, not {FORMAT}"))
    problems = identity.mismatches(state["identity"])
    if problems:
        raise CheckpointError(
            f"Checkpoint {path.name} was trained with other settings: {'; '.join(problems)}. "
            "Resume with the settings it was made with, or start a new run in another output folder."
        )
    lora_state = read_tensors(path / LORA)
    if live_lora is not None:
        check_lora_fits(lora_state, live_lora, path / LORA)
    validate_lora_state(lora_state, identity.rank, path / LORA)
    training = read_training_state(path)
    if optimizer is not None:
        try:
            training_state.check_optimizer_fits(training["optimizer"], optimizer, path)
        except TrainingStateError as exc:
            raise CheckpointError(damaged(exc.file, exc.problem)) from exc
    return LoadedCheckpoint(path=path, step=state["step"], lora_state=lora_state, training=training, state=state)


def restore_checkpoint(
    path: str | Path,
    identity: Identity,
    *,
    transformer: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any = None,
) -> LoadedCheckpoint:
    """Put a run back where checkpoint ``path`` left it: the LoRA, the optimizer, schedule and
    scaler states and the RNGs. It is checked against this model and optimizer before anything
    changes."""
    from chroma_studio.training.lora import get_lora_state, set_lora_state

    loaded = load_checkpoint(path, identity, live_lora=get_lora_state(transformer), optimizer=optimizer)
    set_lora_state(transformer, loaded.lora_state)
    optimizer.load_state_dict(loaded.training["optimizer"])
    scheduler.load_state_dict(loaded.training["scheduler"])
    if scaler is not None and loaded.training.get("scaler"):
        scaler.load_state_dict(loaded.training["scaler"])
    torch.set_rng_state(loaded.training["rng_cpu"])
    cuda_rng = loaded.training.get("rng_cuda")
    if cuda_rng and torch.cuda.is_available() and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    return loaded


def load_lora(folder: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The checked state.json and LoRA of a checkpoint, without a model (what export needs)."""
    folder = Path(folder)
    state = read_state(folder)
    lora_state = read_tensors(folder / LORA)
    validate_lora_state(lora_state, state["identity"]["rank"], folder / LORA)
    return state, lora_state


def resolve_checkpoint(path: str | Path) -> Path:
    """A ``step_N`` folder; a run folder or its ``checkpoints`` folder gives its latest checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist. Give a checkpoints/step_N folder of a run, or its output folder."
        )
    if path.name == CHECKPOINTS or (path / CHECKPOINTS).is_dir():
        latest = RunFolder(path.parent if path.name == CHECKPOINTS else path).latest_checkpoint()
        if latest is None:
            raise CheckpointError(f"No complete checkpoint in {path}.")
        path = latest
    if not (path / STATE).is_file():
        raise CheckpointError(f"{path} is not a checkpoint (no {STATE}). Choose a checkpoints/step_N folder.")
    return path


def damaged(file: Path, problem: str) -> str:
    return f"{file} is damaged or was altered: {problem}. {_USE_EARLIER}"


def legacy_message(folder: Path) -> str:
    return (
        f"Checkpoint {folder} was saved by an earlier version of Chroma Studio. Its optimizer and random "
        f"state are in {LEGACY_STATE}, a pickle file, and loading a pickle can run any code hidden in it, "
        "so it was not loaded. Start a new run; or, only if you made this checkpoint yourself or trust "
        f"where it came from, convert it once with: chroma-studio checkpoint convert {folder}"
    )


def read_state(folder: Path) -> dict[str, Any]:
    """state.json, checked: an object with a step and the run's identity."""
    file = folder / STATE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(damaged(file, f"it cannot be read as JSON ({exc})")) from exc
    if not isinstance(state, dict):
        raise CheckpointError(damaged(file, f"it holds a JSON {type(state).__name__}, not an object"))
    step = state.get("step")
    if not _is_int(step) or step < 0:
        raise CheckpointError(damaged(file, f"'step' is {step!r}, not a whole number"))
    identity = state.get("identity")
    if not isinstance(identity, dict):
        raise CheckpointError(damaged(file, "'identity' (the run's model, rank, alpha and targets) is missing"))
    problem = _identity_problem(identity)
    if problem:
        raise CheckpointError(damaged(file, f"identity {problem}"))
    return state


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _identity_problem(identity: dict[str, Any]) -> str:
    from chroma_studio.training.lora import TARGET_PATTERNS

    model, rank, alpha, targets = (identity.get(k) for k in ("model", "rank", "alpha", "targets"))
    if not isinstance(model, str) or not model:
        return f"'model' is {model!r}, not a model name"
    if not _is_int(rank) or rank < 1:
        return f"'rank' is {rank!r}, not a positive whole number"
    if not (_is_int(alpha) or isinstance(alpha, float)) or not math.isfinite(alpha) or alpha <= 0:
        return f"'alpha' is {alpha!r}, not a positive number"
    if targets not in TARGET_PATTERNS:
        return f"'targets' is {targets!r}, not one of {', '.join(TARGET_PATTERNS)}"
    return ""


def read_tensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise CheckpointError(damaged(file, "the file is missing" if not file.exists() else "it is not a file"))
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors reports a bad header, a short file... with its own error types
        raise CheckpointError(damaged(file, f"it cannot be read as safetensors ({exc})")) from exc


def read_training_state(folder: Path) -> dict[str, Any]:
    """The optimizer, schedule, scaler and RNG states of a format-2 checkpoint, structure checked."""
    try:
        return training_state.read_training_state(folder)
    except TrainingStateError as exc:
        raise CheckpointError(damaged(exc.file, exc.problem)) from exc


# -- checks of the LoRA ------------------------------------------------------------------


def validate_lora_state(state: Mapping[str, torch.Tensor], rank: int, file: Path) -> None:
    """A LoRA on its own: pairs of ``<module>.lora_A.weight`` (rank, in) and ``lora_B.weight`` (out, rank).

    Float, 2-D, finite, of rank ``rank``, at least one module. Raises CheckpointError naming ``file``.
    """

    def fail(problem: str) -> None:
        raise CheckpointError(damaged(file, problem))

    if not state:
        fail("it holds no LoRA tensors")
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        suffix = next((s for s in _LORA_SUFFIXES if key.endswith(s) and len(key) > len(s)), None)
        if suffix is None:
            fail(f"{key!r} is not a LoRA tensor name (<module>.lora_A.weight or <module>.lora_B.weight)")
        if not tensor.dtype.is_floating_point:
            fail(f"{key} is {_dtype(tensor)}, not a float tensor")
        if tensor.dim() != 2:
            fail(f"{key} has {tensor.dim()} dimensions, not 2")
        modules.setdefault(key.removesuffix(suffix), {})[suffix[1:7]] = tensor
    for module, pair in sorted(modules.items()):
        if len(pair) != 2:
            fail(f"{module} has {next(iter(pair))} without its {'lora_B' if 'lora_A' in pair else 'lora_A'}")
        a, b = pair["lora_A"], pair["lora_B"]
        if a.shape[0] != rank or b.shape[1] != rank:
            fail(
                f"{module} has lora_A {tuple(a.shape)} and lora_B {tuple(b.shape)}; "
                f"the checkpoint's rank is {rank}, so they must be ({rank}, in) and (out, {rank})"
            )
    for key, tensor in state.items():
        if not torch.isfinite(tensor).all():
            fail(f"{key} holds NaN or infinite values")


def check_lora_fits(state: Mapping[str, torch.Tensor], live: Mapping[str, torch.Tensor], file: Path) -> None:
    """The LoRA has exactly the live model's LoRA keys and shapes, in float32."""
    missing = sorted(set(live) - set(state))
    if missing:
        problem = f"it lacks {len(missing)} of the {len(live)} LoRA tensors this model trains, e.g. {missing[0]}"
        raise CheckpointError(damaged(file, problem))
    extra = sorted(set(state) - set(live))
    if extra:
        problem = f"it has {len(extra)} LoRA tensors this model does not have, e.g. {extra[0]}"
        raise CheckpointError(damaged(file, problem))
    for key in sorted(live):
        tensor = state[key]
        if tensor.dtype != torch.float32:
            raise CheckpointError(damaged(file, f"{key} is {_dtype(tensor)}, not float32"))
        if tensor.shape != live[key].shape:
            raise CheckpointError(
                damaged(file, f"{key} has shape {tuple(tensor.shape)}; this model's is {tuple(live[key].shape)}")
            )


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")
