"""The LoRA in kohya layout, on the original (BFL/ComfyUI) module names.

``lora_unet_double_blocks_N_img_attn_qkv.lora_down/lora_up/alpha`` and so on. Where the original
model fuses layers that diffusers splits (q, k, v; and in single blocks q, k, v with the MLP input
as ``linear1``), the pieces are fused exactly: the down weights are stacked along the rank and
the up weights placed block-diagonally, so the fused update is the stack of the split ones.
A piece that was not trained (proj_mlp under the ``all`` target) gets zero rows.

The input has the scale folded into its up weights (``export.fold_scale``), so every module
states alpha = its own rank (n*r for n fused pieces): the loader's scale is 1 and each piece's
update is exactly the trained (alpha / rank) * B @ A.
"""

from __future__ import annotations

import re

import torch

from chroma_studio.training.lora import lora_module_names

_DOUBLE = {
    "attn.to_out.0": "img_attn_proj",
    "attn.to_add_out": "txt_attn_proj",
    "ff.net.0.proj": "img_mlp_0",
    "ff.net.2": "img_mlp_2",
    "ff_context.net.0.proj": "txt_mlp_0",
    "ff_context.net.2": "txt_mlp_2",
}
_DOUBLE_FUSED = {
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
}
_SINGLE = {"proj_out": "linear2"}
_SINGLE_FUSED = {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}
MLP_RATIO = 4
_BLOCK = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)$")


def to_kohya(state: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Convert a folded peft LoRA state (diffusers names, no prefix) into kohya tensors, alpha = rank."""
    modules = lora_module_names(state)
    blocks: dict[tuple[str, int], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for module in modules:
        match = _BLOCK.match(module)
        if not match:
            raise ValueError(f"cannot place LoRA module {module} in the kohya layout")
        kind, index, rest = match.group(1), int(match.group(2)), match.group(3)
        blocks.setdefault((kind, index), {})[rest] = (
            state[f"{module}.lora_A.weight"],
            state[f"{module}.lora_B.weight"],
        )

    out: dict[str, torch.Tensor] = {}
    for (kind, index), parts in sorted(blocks.items()):
        prefix = f"lora_unet_{'double' if kind == 'transformer_blocks' else 'single'}_blocks_{index}_"
        plain, fused = (_DOUBLE, _DOUBLE_FUSED) if kind == "transformer_blocks" else (_SINGLE, _SINGLE_FUSED)
        used = set()
        for rest, name in plain.items():
            if rest in parts:
                down, up = parts[rest]
                _put(out, prefix + name, down, up, dtype)
                used.add(rest)
        for name, pieces in fused.items():
            present = [p for p in pieces if p in parts]
            if present:
                down, up = _fuse(parts, pieces)
                _put(out, prefix + name, down, up, dtype)
                used.update(present)
        unknown = set(parts) - used
        if unknown:
            raise ValueError(f"no kohya name for {kind}.{index}.{sorted(unknown)[0]}")
    return out


def _put(out, key: str, down: torch.Tensor, up: torch.Tensor, dtype: torch.dtype) -> None:
    """One module; alpha = its rank (the down weight's rows), so loaders apply it at scale 1."""
    out[f"{key}.lora_down.weight"] = down.to(dtype).contiguous()
    out[f"{key}.lora_up.weight"] = up.to(dtype).contiguous()
    out[f"{key}.alpha"] = torch.tensor(float(down.shape[0]), dtype=torch.float32)


def _fuse(parts: dict[str, tuple[torch.Tensor, torch.Tensor]], pieces: tuple[str, ...]):
    """Stack the trained pieces' down weights; place their up weights block-diagonally."""
    present = [p for p in pieces if p in parts]
    rank = parts[present[0]][0].shape[0]
    in_features = parts[present[0]][0].shape[1]
    downs, rows = [], []
    for piece in pieces:
        if piece in parts:
            downs.append(parts[piece][0])
            rows.append(parts[piece][1].shape[0])
        elif piece == "proj_mlp":  # untrained (target "all"): zero rows for the MLP input
            rows.append(in_features * MLP_RATIO)
        else:
            raise ValueError(f"the kohya layout needs q, k and v trained together; {piece} is missing")
    down = torch.cat(downs, dim=0)
    up = torch.zeros(sum(rows), rank * len(present), dtype=parts[present[0]][1].dtype)
    row, column = 0, 0
    for piece, height in zip(pieces, rows, strict=True):
        if piece in parts:
            up[row : row + height, column : column + rank] = parts[piece][1]
            column += rank
        row += height
    return down, up
