"""Gradient checkpointing that keeps Chroma's attention mask.

diffusers' own checkpointing path in ``ChromaTransformer2DModel.forward`` calls the 38 single
blocks without ``attention_mask``, so masking silently turns off in most of the network exactly
when memory is tight. Instead of that path we wrap each block's ``forward`` in
``torch.utils.checkpoint`` ourselves, with every argument passed through, and keep diffusers'
flag off. Module names (and so LoRA keys) do not change.

A forward that was already wrapped (block streaming, which must load in the recompute too) is the
one checkpointed, and turning checkpointing off gives it back.
"""

from __future__ import annotations

import functools

import torch
from torch.utils.checkpoint import checkpoint

_MARK = "_chroma_studio_checkpointed"
_INNER = "_chroma_studio_checkpointed_inner"  # an instance forward that checkpointing wrapped


def _blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    return [*transformer.transformer_blocks, *transformer.single_transformer_blocks]


def enable_masked_checkpointing(transformer: torch.nn.Module) -> None:
    """Checkpoint every transformer block, mask included."""
    if getattr(transformer, "gradient_checkpointing", False):
        transformer.disable_gradient_checkpointing()
    for block in _blocks(transformer):
        if getattr(block, _MARK, False):
            continue
        plain = block.forward

        @functools.wraps(plain)
        def forward(*args, _plain=plain, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_plain, *args, use_reentrant=False, **kwargs)
            return _plain(*args, **kwargs)

        if "forward" in vars(block):
            setattr(block, _INNER, plain)
        block.forward = forward
        setattr(block, _MARK, True)


def disable_masked_checkpointing(transformer: torch.nn.Module) -> None:
    for block in _blocks(transformer):
        if getattr(block, _MARK, False):
            inner = vars(block).pop(_INNER, None)
            if inner is None:
                del block.forward  # the class's forward shows through again
            else:
                block.forward = inner
            delattr(block, _MARK)


def masked_checkpointing_enabled(transformer: torch.nn.Module) -> bool:
    return all(getattr(block, _MARK, False) for block in _blocks(transformer))
