"""The optimizer, LR-schedule, grad-scaler and RNG states of a checkpoint, stored without pickle.

These states are trees of dicts, lists, tuples, numbers, strings and tensors. ``torch.save`` would
pickle them, and loading a pickle can run any code the file names: a checkpoint folder someone
shares would run it on resume. Here the tree goes to JSON (``training_state.json``) and its
tensors to safetensors (``training_state.safetensors``); reading them back makes nothing but
JSON values, tuples, dicts and tensors, and what is read is checked against what torch's
``load_state_dict`` calls expect before any of it is used.

JSON has no tensors, tuples or non-string keys, so those become one-key objects:

- ``{"__tensor__": name}``: the tensor stored under ``name`` (its path in the tree, e.g.
  ``optimizer/state/0/exp_avg``; the CPU RNG state is the uint8 tensor ``rng_cpu``);
- ``{"__tuple__": [...]}``: a tuple (``betas`` stays a tuple, so the state comes back as it was);
- ``{"__items__": [[key, value], ...]}``: a dict whose keys are not all strings, such as the
  optimizer's per-parameter state keyed by parameter index (a string key would not match).

Any other dict is a plain JSON object. Floats round-trip exactly (``repr`` precision; NaN and
infinities as JSON's common extensions), so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

TENSORS_FILE = "training_state.safetensors"
JSON_FILE = "training_state.json"

TENSOR, TUPLE, ITEMS = "__tensor__", "__tuple__", "__items__"
_TAGS = frozenset((TENSOR, TUPLE, ITEMS))
_SCALARS = (bool, int, float, str, type(None))


class StateFormatError(ValueError):
    """The JSON document and the tensors do not make a state tree; the message says where."""


class TrainingStateError(ValueError):
    """A training-state file that cannot be used: ``file`` and the ``problem`` in words."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file, self.problem = file, problem


def split_tensors(tree: Any, root: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """``tree`` as a JSON-ready document and the tensors it refers to (copied to the CPU).

    Raises TypeError for a value that has no such form (it would need pickle).
    """
    tensors: dict[str, torch.Tensor] = {}

    def encode(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            name = path or "tensor"
            if name in tensors:  # only when a key itself holds a "/"
                name = f"{name}#{len(tensors)}"
            tensors[name] = value.detach().to("cpu", copy=True).contiguous()
            return {TENSOR: name}
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, tuple):
            return {TUPLE: [encode(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and not (len(value) == 1 and next(iter(value)) in _TAGS):
                return {k: encode(v, f"{path}/{k}") for k, v in value.items()}
            for key in value:
                if not isinstance(key, _SCALARS):
                    raise TypeError(f"cannot store a {type(key).__name__} dict key at {path or '/'} without pickle")
            return {ITEMS: [[k, encode(v, f"{path}/{k}")] for k, v in value.items()]}
        raise TypeError(f"cannot store a {type(value).__name__} at {path or '/'} without pickle")

    return encode(tree, root), tensors


def join_tensors(document: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The tree that ``split_tensors`` took apart. Every tensor must be referred to exactly once."""
    used: set[str] = set()

    def decode(value: Any, path: str) -> Any:
        if isinstance(value, list):
            return [decode(v, f"{path}/{i}") for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in _TAGS:
            tag, inner = next(iter(value.items()))
            if tag == TENSOR:
                if not isinstance(inner, str) or inner not in tensors:
                    raise StateFormatError(f"{path or '/'} refers to a tensor {inner!r} that is not stored")
                if inner in used:
                    raise StateFormatError(f"{path or '/'} refers to tensor {inner!r} a second time")
                used.add(inner)
                return tensors[inner]
            if not isinstance(inner, list):
                raise StateFormatError(f"{path or '/'}: {tag} holds a {type(inner).__name__}, not a list")
            if tag == TUPLE:
                return tuple(decode(v, f"{path}/{i}") for i, v in enumerate(inner))
            items = {}
            for pair in inner:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], _SCALARS)):
                    raise StateFormatError(f"{path or '/'}: an entry of {ITEMS} is not a [key, value] pair")
                items[pair[0]] = decode(pair[1], f"{path}/{pair[0]}")
            return items
        return {k: decode(v, f"{path}/{k}") for k, v in value.items()}

    tree = decode(document, "")
    unused = sorted(set(tensors) - used)
    if unused:
        raise StateFormatError(f"{len(unused)} stored tensors are not part of the state, e.g. {unused[0]!r}")
    return tree


def write_training_state(folder: Path, training: dict[str, Any]) -> None:
    """``training`` (optimizer, scheduler, scaler, rng_cpu, rng_cuda) as the two files in ``folder``."""
    document, tensors = split_tensors(training)
    save_file(tensors, str(folder / TENSORS_FILE))
    (folder / JSON_FILE).write_text(json.dumps(document))


def read_training_state(folder: Path) -> dict[str, Any]:
    """What ``write_training_state`` wrote, with its structure checked; raises TrainingStateError."""
    file = folder / TENSORS_FILE
    if not file.is_file():
        raise TrainingStateError(file, "the file is missing" if not file.exists() else "it is not a file")
    try:
        tensors = load_file(str(file))
    except Exception as exc:  # safetensors reports a bad header, a short file... with its own error types
        raise TrainingStateError(file, f"it cannot be read as safetensors ({exc})") from exc
    file = folder / JSON_FILE
    try:
        training = join_tensors(json.loads(file.read_text(encoding="utf-8")), tensors)
    except FileNotFoundError as exc:
        raise TrainingStateError(file, "the file is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, StateFormatError) as exc:
        raise TrainingStateError(file, f"it cannot be read ({exc})") from exc
    check_structure(training, folder)
    return training


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_structure(training: Any, folder: Path) -> None:
    """The training state has the shape torch's ``load_state_dict`` calls expect (any optimizer)."""

    def require(ok: bool, problem: str, name: str = JSON_FILE) -> None:
        if not ok:
            raise TrainingStateError(folder / name, problem)

    require(isinstance(training, dict), "it is not an object")
    optimizer = training.get("optimizer")
    require(isinstance(optimizer, dict), "the optimizer state is missing")
    groups = optimizer.get("param_groups")
    require(isinstance(optimizer.get("state"), dict), "the optimizer state has no per-parameter state")
    require(
        isinstance(groups, list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups)
        and all(_is_int(i) for g in groups for i in g["params"]),
        "the optimizer's parameter groups are not lists of parameter numbers",
    )
    for value in optimizer["state"].values():
        require(isinstance(value, dict), "the optimizer's per-parameter state is not a set of named values")
    scheduler = training.get("scheduler")
    require(isinstance(scheduler, dict) and _is_int(scheduler.get("last_epoch")), "the LR schedule state is missing")
    require(training.get("scaler") is None or isinstance(training["scaler"], dict), "the grad scaler state is wrong")
    cuda = training.get("rng_cuda")
    rng = [training.get("rng_cpu"), *(cuda if isinstance(cuda, list) else [])]
    require(
        isinstance(cuda, list | type(None))
        and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1 for t in rng),
        "the random number generator state is not a byte tensor",
        TENSORS_FILE,
    )
    size = torch.get_rng_state().numel()
    require(
        rng[0].numel() == size,
        f"the CPU random number generator state has {rng[0].numel()} bytes, not {size}",
        TENSORS_FILE,
    )


def check_optimizer_fits(saved: dict[str, Any], optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """The saved optimizer state holds this optimizer's parameters, in its groups, with their shapes."""
    groups = [g["params"] for g in saved["param_groups"]]
    live = [g["params"] for g in optimizer.param_groups]
    if [len(g) for g in groups] != [len(g) for g in live]:
        raise TrainingStateError(
            folder / JSON_FILE,
            f"its optimizer state is for {sum(map(len, groups))} parameters in {len(groups)} groups; "
            f"this run trains {sum(map(len, live))} parameters in {len(live)} groups",
        )
    indices = [i for g in groups for i in g]
    if len(set(indices)) != len(indices):
        raise TrainingStateError(folder / JSON_FILE, "its optimizer groups name a parameter twice")
    params = dict(zip(indices, (p for g in live for p in g), strict=True))
    for index, values in saved["state"].items():
        if index not in params:
            raise TrainingStateError(folder / JSON_FILE, f"it has optimizer state for parameter {index!r}")
        for name, value in values.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if not value.dtype.is_floating_point or value.shape != params[index].shape:
                dtype = str(value.dtype).removeprefix("torch.")
                raise TrainingStateError(
                    folder / TENSORS_FILE,
                    f"optimizer {name} of parameter {index} is {dtype} of shape {tuple(value.shape)}; "
                    f"the parameter is float of shape {tuple(params[index].shape)}",
                )
