"""The real Chroma transformer made directly on a device with random weights, then quantized.

For measuring memory on a GPU without a download: the model is built on the meta device, made
on the device with random bf16 weights (no host copy of 17.8 GB), and quantized with the
engine's quanto path or, for NF4, with bitsandbytes layer by layer.
"""

from __future__ import annotations

from typing import Any

from chroma_studio.training.demo import TRANSFORMER as TINY  # a tiny Chroma with the real block structure
from support.calibration.checkpoint import random_tensor, transformer_config


def build_transformer(device: Any, tiny: bool) -> Any:
    """The real (or tiny) Chroma transformer with random bf16 weights, made directly on ``device``."""
    import torch
    from diffusers import ChromaTransformer2DModel
    from diffusers.models.embeddings import get_timestep_embedding

    config = {k: v for k, v in transformer_config(**(TINY if tiny else {})).items() if not k.startswith("_")}
    with torch.device("meta"):
        model = ChromaTransformer2DModel(**config)
    model = model.to_empty(device=device).to(torch.bfloat16)
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:  # norm scales 1, biases 0
                param.copy_(random_tensor(tuple(param.shape), name, torch.bfloat16, None))
            else:
                param.normal_(0.0, 0.02, generator=generator)
    embed = model.time_text_embed  # a buffer computed in __init__, lost on the meta device
    embed.mod_proj = get_timestep_embedding(
        torch.arange(embed.mod_proj.shape[0]) * 1000,
        2 * embed.time_proj.num_channels,
        flip_sin_to_cos=True,
        downscale_freq_shift=0,
    ).to(device)
    return model.requires_grad_(False)


def quantize(model: Any, precision: str, device: Any) -> Any:
    """The engine's quanto path, or bitsandbytes NF4 for the blocks' linear layers."""
    if precision != "nf4-bnb":
        from chroma_studio.training.quantize import quantize_transformer

        return quantize_transformer(model, precision, device)
    import bitsandbytes as bnb
    import torch

    blocks = [*model.transformer_blocks, *model.single_transformer_blocks]
    for block in blocks:
        for name, linear in list(block.named_modules()):
            if not isinstance(linear, torch.nn.Linear):
                continue
            parent = block.get_submodule(name.rpartition(".")[0]) if "." in name else block
            q = bnb.nn.Linear4bit(
                linear.in_features,
                linear.out_features,
                bias=linear.bias is not None,
                compute_dtype=torch.bfloat16,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",
            )
            q.weight = bnb.nn.Params4bit(
                linear.weight.data.cpu(), requires_grad=False, compress_statistics=True, quant_type="nf4"
            ).to(device)
            if linear.bias is not None:
                q.bias = torch.nn.Parameter(linear.bias.data, requires_grad=False)
            setattr(parent, name.rpartition(".")[2], q)
            del linear
        torch.cuda.empty_cache()
    return model
