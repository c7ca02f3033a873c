"""Recounting the parameters of the real Chroma components on the meta device.

``chroma_studio.hardware.architecture.CACHED_COUNTS`` holds the result, so the memory model
needs no torch; this rebuilds it (a few seconds; imports torch, diffusers and transformers).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chroma_studio.hardware.architecture import UNQUANTIZED_MODULES, read_model_config


def _init_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _linear_shapes(module: Any) -> list[list[Any]]:
    import torch

    return [
        [name, m.in_features, m.out_features] for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)
    ]


def _numel(params: Iterable[Any]) -> int:
    return sum(p.numel() for p in params)


def count_architecture(folder: Path | None = None) -> dict[str, Any]:
    """Build the three components on the meta device and count their parameters.

    Returns the same structure as ``CACHED_COUNTS``. Takes a few seconds; imports torch,
    diffusers and transformers.
    """
    import torch
    from diffusers import AutoencoderKL, ChromaTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    with torch.device("meta"):
        transformer = ChromaTransformer2DModel(**_init_kwargs(read_model_config("transformer", folder)))
        t5 = T5EncoderModel(T5Config(**_init_kwargs(read_model_config("text_encoder", folder))))
        vae = AutoencoderKL(**_init_kwargs(read_model_config("vae", folder)))
    double, single = transformer.transformer_blocks[0], transformer.single_transformer_blocks[0]

    def other(block: Any) -> int:
        linear_params = sum(_numel(m.parameters()) for m in block.modules() if isinstance(m, torch.nn.Linear))
        return _numel(block.parameters()) - linear_params

    # The encoder's token embedding is tied to ``shared`` when the weights are loaded: count it once.
    t5_params = _numel({id(p): p for p in t5.parameters()}.values())
    if t5.encoder.embed_tokens.weight is not t5.shared.weight:
        t5_params -= t5.encoder.embed_tokens.weight.numel()
    return {
        "transformer": {
            "total": _numel(transformer.parameters()),
            "dim": transformer.inner_dim,
            "heads": transformer.config.num_attention_heads,
            "head_dim": transformer.config.attention_head_dim,
            "mlp_dim": single.mlp_hidden_dim,
            "double_blocks": len(transformer.transformer_blocks),
            "single_blocks": len(transformer.single_transformer_blocks),
            "double_linears": _linear_shapes(double),
            "single_linears": _linear_shapes(single),
            "double_other": other(double),
            "single_other": other(single),
            "top_level": {
                name: _numel(module.parameters())
                for name, module in transformer.named_children()
                if name in UNQUANTIZED_MODULES and _numel(module.parameters())
            },
        },
        "text_encoder": {
            "total": t5_params,
            "largest_block": max(_numel(b.parameters()) for b in t5.encoder.block),
            "embedding": t5.shared.weight.numel(),
        },
        "vae": {
            "total": _numel(vae.parameters()),
            "encoder": _numel(vae.encoder.parameters()),
            "decoder": _numel(vae.decoder.parameters()),
        },
    }
