"""The LoRA file users load: ``pytorch_lora_weights.safetensors``.

It loads at the trained strength in diffusers and in ComfyUI/Forge alike:

- keys ``transformer.<diffusers module>.lora_A.weight`` / ``.lora_B.weight`` (q, k, v split as
  peft trains them; ComfyUI maps them onto its fused weights itself);
- a float tensor ``transformer.<module>.alpha`` for every module. ComfyUI reads alpha only from
  such tensors and otherwise applies alpha = rank; diffusers reads them too;
- the adapter settings (rank, alpha, targets) and the run (base model, flavour, steps, trigger
  word, resolution) in the safetensors header, under our own keys. diffusers' own
  ``lora_adapter_metadata`` key is left out on purpose: diffusers 0.42 refuses a file that has
  both it and ``.alpha`` tensors ("Both `network_alphas` and `metadata` cannot be specified"),
  and the tensors are what ComfyUI needs. Without it diffusers takes the rank from the weight
  shapes and alpha from the tensors, which is the same adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from chroma_studio.atomic import write_bytes_atomic
from chroma_studio.training.lora import lora_module_names

LORA_FILENAME = "pytorch_lora_weights.safetensors"
PREFIX = "transformer."


def diffusers_lora_tensors(state: dict[str, torch.Tensor], alpha: float, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    tensors = {PREFIX + key: value.to(dtype).contiguous() for key, value in state.items()}
    for module in lora_module_names(state):
        tensors[f"{PREFIX}{module}.alpha"] = torch.tensor(float(alpha), dtype=torch.float32)
    return tensors


def header_metadata(adapter_config: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """The safetensors header: the adapter settings and the run info, as JSON and as flat keys."""
    merged = {**info, "adapter": adapter_config}
    return {
        "format": "pt",
        "chroma_studio": json.dumps(merged, sort_keys=True, default=str),
        **{f"chroma_studio.{k}": str(v) for k, v in info.items() if v is not None},
    }


def adapter_config_dict(rank: int, alpha: float, target_pattern: str) -> dict[str, Any]:
    """What diffusers needs to rebuild the adapter (a LoraConfig's arguments)."""
    return {"r": rank, "lora_alpha": alpha, "target_modules": target_pattern, "init_lora_weights": "gaussian"}


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
    """Write a LoRA file atomically, in the main (diffusers) layout or kohya's; return its path."""
    metadata = header_metadata(adapter_config_dict(rank, alpha, target_pattern), info)
    if fmt == "diffusers":
        tensors = diffusers_lora_tensors(state, alpha, dtype)
    else:
        from chroma_studio.training.kohya import to_kohya

        tensors = to_kohya(state, alpha, dtype)
        metadata.update(  # what sd-scripts-based tools read
            {
                "ss_network_module": "networks.lora_flux",
                "ss_network_dim": str(rank),
                "ss_network_alpha": str(alpha),
                "ss_base_model_version": "chroma",
            }
        )
    write_bytes_atomic(path, save(tensors, metadata=metadata))
    return Path(path)


def read_header(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


KOHYA_FILENAME = "chroma_lora_kohya.safetensors"
FORMATS = ("diffusers", "kohya")


def lora_filename(fmt: str, step: int | None = None) -> str:
    base = LORA_FILENAME if fmt == "diffusers" else KOHYA_FILENAME
    return base if step is None else base.replace(".safetensors", f"_step_{step}.safetensors")


def export_checkpoint(
    run_dir: str | Path, step: int | None = None, fmt: str = "diffusers", output: str | Path | None = None
) -> Path:
    """Write the LoRA file of a run's checkpoint (the latest when ``step`` is None)."""
    from safetensors.torch import load_file

    from chroma_studio.training.checkpoint import CheckpointError, checkpoint_dirs
    from chroma_studio.training.lora import TARGET_PATTERNS

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} does not exist or is not a folder; give a run's output folder.")
    found = dict(checkpoint_dirs(run_dir))
    if not found:
        raise CheckpointError(f"{run_dir} has no checkpoints; is it a Chroma Studio output folder?")
    chosen = max(found) if step is None else step
    if chosen not in found:
        raise CheckpointError(f"{run_dir} has no checkpoint at step {step}; it has steps {sorted(found)}.")
    state_info = json.loads((found[chosen] / "state.json").read_text())
    identity = state_info["identity"]
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.get("mixed_precision"), torch.float32)
    info = {
        "base_model": identity["model"],
        "model_flavour": config.get("model_flavour"),
        "steps": chosen,
        "trigger_word": config.get("trigger_word"),
        "resolution": config.get("resolution"),
        "lora_rank": identity["rank"],
        "lora_alpha": identity["alpha"],
        "flux_lora_target": identity["targets"],
        "software": "Chroma Studio",
    }
    target = output or run_dir / lora_filename(fmt, None if step is None else chosen)
    return save_lora(
        target,
        load_file(str(found[chosen] / "lora.safetensors")),
        rank=identity["rank"],
        alpha=identity["alpha"],
        target_pattern=TARGET_PATTERNS[identity["targets"]],
        info=info,
        dtype=dtype,
        fmt=fmt,
    )
