"""The LoRA file users load: ``pytorch_lora_weights.safetensors``.

It loads at the trained strength in diffusers and in ComfyUI/Forge alike:

- keys ``transformer.<diffusers module>.lora_A.weight`` / ``.lora_B.weight`` (q, k, v split as
  peft trains them; ComfyUI maps them onto its fused weights itself);
- a float tensor ``transformer.<module>.alpha`` for every module. ComfyUI reads alpha only from
  such tensors and otherwise applies alpha = rank; diffusers reads them too;
- diffusers' adapter metadata (rank, alpha, targets) plus ours (base model, flavour, steps,
  trigger word, resolution) in the safetensors header.
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
    """The safetensors header: diffusers' adapter metadata under its key, and our run info."""
    adapter = {f"transformer.{k}": (sorted(v) if isinstance(v, set) else v) for k, v in adapter_config.items()}
    return {
        "format": "pt",
        "lora_adapter_metadata": json.dumps(adapter, indent=2, sort_keys=True, default=str),
        "chroma_studio": json.dumps(info, sort_keys=True),
        **{f"chroma_studio.{k}": str(v) for k, v in info.items() if v is not None},
    }


def adapter_config_dict(rank: int, alpha: float, target_pattern: str) -> dict[str, Any]:
    """What diffusers needs to rebuild the adapter (a LoraConfig's arguments)."""
    return {"r": rank, "lora_alpha": alpha, "target_modules": target_pattern, "init_lora_weights": "gaussian"}


def save_diffusers_lora(
    path: str | Path,
    state: dict[str, torch.Tensor],
    *,
    rank: int,
    alpha: float,
    target_pattern: str,
    info: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the main LoRA file atomically and return its path."""
    tensors = diffusers_lora_tensors(state, alpha, dtype)
    metadata = header_metadata(adapter_config_dict(rank, alpha, target_pattern), info)
    write_bytes_atomic(path, save(tensors, metadata=metadata))
    return Path(path)


def read_header(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})
