"""The LoRA file users load: ``pytorch_lora_weights.safetensors``.

It loads at the trained strength in every loader: diffusers' pipeline (``load_lora_weights``)
and model-level (``load_lora_adapter``) loaders, ComfyUI and Forge:

- the scale is folded into the weights: ``lora_B`` is written as (alpha / rank) * B, and every
  alpha the file states equals the rank, so a loader that applies alpha = rank (diffusers'
  model-level loader ignores ``.alpha`` tensors) still applies the trained update;
- keys ``transformer.<diffusers module>.lora_A.weight`` / ``.lora_B.weight`` (q, k, v split as
  peft trains them; ComfyUI maps them onto its fused weights itself);
- a float tensor ``transformer.<module>.alpha`` (= rank) for every module: ComfyUI reads alpha
  only from such tensors;
- the adapter settings (rank, alpha = rank, targets), the trained rank and alpha with the flag
  ``lora_scale_folded`` (rebuild the adapter with alpha = rank, never the trained alpha) and
  the run (base model, flavour, steps, trigger word, resolution, noise-level distribution) in
  the safetensors header, under our own keys. diffusers' own ``lora_adapter_metadata`` key is
  left out on purpose: diffusers 0.42 refuses a file that has both it and ``.alpha`` tensors
  ("Both `network_alphas` and `metadata` cannot be specified").

Checkpoints keep the unfolded LoRA and the trained alpha; the folding happens here, on export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from chroma_studio.base.atomic import write_bytes_atomic
from chroma_studio.base.run_folder import LORA_FILES, RunFolder
from chroma_studio.config.settings import UNRECORDED_SIGMA_DISTRIBUTION
from chroma_studio.training.lora import lora_module_names

PREFIX = "transformer."
FORMATS = tuple(LORA_FILES)  # "diffusers" (the main file), "kohya"


def fold_scale(state: dict[str, torch.Tensor], rank: int, alpha: float) -> dict[str, torch.Tensor]:
    """The LoRA with its scale in the up weights: B' = (alpha / rank) * B (in fp32), applied at alpha = rank."""
    scale = float(alpha) / rank
    return {key: value.float() * scale if ".lora_B." in key else value for key, value in state.items()}


def diffusers_lora_tensors(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A folded LoRA under ``transformer.`` names, with ``.alpha`` = each module's rank."""
    tensors = {PREFIX + key: value.to(dtype).contiguous() for key, value in state.items()}
    for module in lora_module_names(state):
        rank = state[f"{module}.lora_A.weight"].shape[0]
        tensors[f"{PREFIX}{module}.alpha"] = torch.tensor(float(rank), dtype=torch.float32)
    return tensors


def _header_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def header_metadata(adapter_config: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """The safetensors header: the adapter settings and the run info, as JSON and as flat keys."""
    merged = {**info, "adapter": adapter_config}
    return {
        "format": "pt",
        "chroma_studio": json.dumps(merged, sort_keys=True, default=str),
        **{f"chroma_studio.{k}": _header_value(v) for k, v in info.items() if v is not None},
    }


def adapter_config_dict(rank: int, target_pattern: str) -> dict[str, Any]:
    """What diffusers needs to rebuild the adapter of the folded file (a LoraConfig's arguments)."""
    return {"r": rank, "lora_alpha": rank, "target_modules": target_pattern, "init_lora_weights": "gaussian"}


def save_lora(
    path: str | Path,
    state: dict[str, torch.Tensor],
    *,
    rank: int,
    alpha: float,
    target_pattern: str,
    info: dict[str, Any],
    dtype: torch.dtype = torch.float32,
    fmt: str = "diffusers",
) -> Path:
    """Write a LoRA file atomically, in the main (diffusers) layout or kohya's; return its path.

    ``state`` is the trained (unfolded) LoRA; the file gets it with the scale folded in.
    """
    trained = {"trained_lora_rank": rank, "trained_lora_alpha": float(alpha), "lora_scale_folded": True}
    metadata = header_metadata(adapter_config_dict(rank, target_pattern), {**info, **trained})
    folded = fold_scale(state, rank, alpha)
    if fmt == "diffusers":
        tensors = diffusers_lora_tensors(folded, dtype)
    else:
        from chroma_studio.training.kohya import to_kohya

        tensors = to_kohya(folded, dtype)
        metadata.update(  # what sd-scripts-based tools read
            {
                "ss_network_module": "networks.lora_flux",
                "ss_network_dim": str(rank),
                "ss_network_alpha": str(rank),
                "ss_base_model_version": "chroma",
            }
        )
    write_bytes_atomic(path, save(tensors, metadata=metadata))
    return Path(path)


def read_header(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def export_checkpoint(
    run_dir: str | Path, step: int | None = None, fmt: str = "diffusers", output: str | Path | None = None
) -> Path:
    """Write the LoRA file of a run's checkpoint (the latest when ``step`` is None)."""
    from chroma_studio.training.checkpoint import CheckpointError, load_lora
    from chroma_studio.training.lora import TARGET_PATTERNS

    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise CheckpointError(f"There is no LoRA format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} does not exist or is not a folder; give a run's output folder.")
    folder = RunFolder(run_dir)
    found = dict(folder.checkpoints())
    if not found:
        raise CheckpointError(f"{run_dir} has no checkpoints; is it a Chroma Studio output folder?")
    chosen = max(found) if step is None else step
    if chosen not in found:
        raise CheckpointError(f"{run_dir} has no checkpoint at step {step}; it has steps {sorted(found)}.")
    state_info, lora_state = load_lora(found[chosen])  # checked: a damaged one is a CheckpointError
    identity = state_info["identity"]
    config = folder.read_config()  # header details only: {} when missing or unreadable
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(config.get("mixed_precision")), torch.float32)
    info = {
        "base_model": identity["model"],
        "model_flavour": config.get("model_flavour"),
        "steps": chosen,
        "trigger_word": config.get("trigger_word"),
        "resolution": config.get("resolution"),
        "flux_lora_target": identity["targets"],
        "sigma_distribution": trained_sigma_distribution(state_info, config),
        "software": "Chroma Studio",
    }
    target = output or folder.lora_file(fmt, None if step is None else chosen)
    return save_lora(
        target,
        lora_state,
        rank=identity["rank"],
        alpha=identity["alpha"],
        target_pattern=TARGET_PATTERNS[identity["targets"]],
        info=info,
        dtype=dtype,
        fmt=fmt,
    )


def trained_sigma_distribution(state: dict[str, Any], config: dict[str, Any]) -> Any:
    """The noise-level distribution a run trained with; earlier versions used SimpleTuner's tail map."""
    for value in (state.get("sigma_distribution"), config.get("flow_sigma_distribution")):
        if value is not None:
            return value
    return UNRECORDED_SIGMA_DISTRIBUTION
