"""Which layers get a LoRA, adding it with peft, and the state that is saved.

Targets are full-name regular expressions, not suffixes: a suffix such as ``proj_out`` would
also catch the transformer's final projection, and nothing here may touch the embedders or the
modulation approximator (``distilled_guidance_layer``), which ComfyUI cannot apply under
``transformer.`` keys.
"""

from __future__ import annotations

import re

import torch

ADAPTER = "default"

_ATTN = r"attn\.(to_q|to_k|to_v|to_out\.0)"
_CONTEXT = r"attn\.(add_q_proj|add_k_proj|add_v_proj|to_add_out)"
_FF = r"ff\.net\.(0\.proj|2)"
_FF_CONTEXT = r"ff_context\.net\.(0\.proj|2)"
_SINGLE_ATTN = r"attn\.(to_q|to_k|to_v)"


def _pattern(double: list[str], single: list[str]) -> str:
    parts = []
    if double:
        parts.append(rf"transformer_blocks\.\d+\.({'|'.join(double)})")
    if single:
        parts.append(rf"single_transformer_blocks\.\d+\.({'|'.join(single)})")
    return "|".join(f"({p})" for p in parts)


TARGET_PATTERNS: dict[str, str] = {
    "all": _pattern([_ATTN, _CONTEXT], [_SINGLE_ATTN]),
    "all+ffs": _pattern([_ATTN, _CONTEXT, _FF, _FF_CONTEXT], [_SINGLE_ATTN, "proj_mlp", "proj_out"]),
    "context": _pattern([_CONTEXT], []),
    "context+ffs": _pattern([_CONTEXT, _FF_CONTEXT], []),
    "tiny": _pattern([_ATTN, r"ff\.net\.0\.proj"], [_SINGLE_ATTN]),
}


def target_module_names(transformer: torch.nn.Module, target: str) -> list[str]:
    """The Linear layers that ``target`` selects, by full module name."""
    pattern = re.compile(TARGET_PATTERNS[target])
    return [
        name
        for name, module in transformer.named_modules()
        if isinstance(module, torch.nn.Linear) and pattern.fullmatch(name)
    ]


def add_lora(transformer: torch.nn.Module, rank: int, alpha: float, target: str) -> list[str]:
    """Add a fresh LoRA (A Gaussian, B zero, so the model starts unchanged); trainable params in fp32.

    Returns the names of the adapted modules.
    """
    from peft import LoraConfig

    names = target_module_names(transformer, target)
    if not names:
        raise ValueError(f"flux_lora_target '{target}' selects no layers of this transformer")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        init_lora_weights="gaussian",
        target_modules=TARGET_PATTERNS[target],
    )
    transformer.add_adapter(config, adapter_name=ADAPTER)
    for parameter in lora_parameters(transformer):
        parameter.data = parameter.data.float()
    return names


def lora_parameters(transformer: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for n, p in transformer.named_parameters() if ".lora_A." in n or ".lora_B." in n]


def lora_module_names(state: dict[str, torch.Tensor]) -> list[str]:
    """Module names in a peft-style LoRA state dict (``<module>.lora_A.weight`` keys)."""
    return sorted({key.rsplit(".lora_A.", 1)[0] for key in state if ".lora_A." in key})


def get_lora_state(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained LoRA weights with diffusers module names (no prefix), detached, on the CPU."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER)
    return {key: value.detach().to("cpu", copy=True).contiguous() for key, value in state.items()}


def set_lora_state(transformer: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load LoRA weights saved by get_lora_state; every trained module must be matched."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unexpected:
        raise ValueError(f"LoRA weights do not fit this model: {len(unexpected)} unknown keys, e.g. {unexpected[0]}")
    for parameter in lora_parameters(transformer):
        parameter.data = parameter.data.float()
