"""Noise levels for training and the learning-rate schedule."""

from __future__ import annotations

import math

import torch


def sample_sigmas(
    batch_size: int,
    generator: torch.Generator,
    *,
    uniform: bool = False,
    sigmoid_scale: float = 1.0,
    shift: float = 0.0,
) -> torch.Tensor:
    """Chroma's training noise levels in (0, 1), one per sample (float32, CPU).

    1. Draw sigma logit-normally (``sigmoid(scale * N(0, 1))``) or uniformly.
    2. Optionally shift it toward noise, Flux-style: ``shift*s / (1 + (shift-1)*s)`` (off by default:
       Chroma does not need it).
    3. Chroma's tail remap, which spends more steps near the clean image and near pure noise than
       the logit-normal alone would: ``s -> s**2`` below 0.5 and ``s -> 1 - (1-s)**2`` from 0.5 up.
       Each half is pushed toward its own end, (0, 0.5) onto (0, 0.25) and [0.5, 1) onto
       [0.75, 1), so training sees no sigma strictly between 0.25 and 0.75.
    """
    if uniform:
        sigma = torch.rand(batch_size, generator=generator)
    else:
        sigma = torch.sigmoid(sigmoid_scale * torch.randn(batch_size, generator=generator))
    if shift and shift != 1.0:
        sigma = shift * sigma / (1 + (shift - 1) * sigma)
    return chroma_tail_remap(sigma)


def chroma_tail_remap(sigma: torch.Tensor) -> torch.Tensor:
    return torch.where(sigma < 0.5, sigma.square(), 1 - (1 - sigma).square())


def lr_lambda(name: str, warmup_steps: int, total_steps: int):
    """The multiplier on the base learning rate at each optimizer step (LambdaLR)."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if name in ("constant", "constant_with_warmup"):
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        if name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if name == "linear":
            return 1.0 - progress
        raise ValueError(f"unknown lr_scheduler {name!r}")

    return factor
