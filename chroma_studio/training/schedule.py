"""Noise levels for training and the learning-rate schedule."""

from __future__ import annotations

import math

import torch

from chroma_studio.config.settings import SigmaDistribution

# Chroma's own training distribution: density proportional to 2 - 7.7 (s - 0.5)^2 on [0, 1].
# It is the one the model's author trains Chroma and its LoRAs with (lodestone-rock/flow, the
# `create_distribution` of its Chroma trainers). About 68% of the mass lies in 0.25-0.75, about 3%
# below 0.1 and 3% above 0.9.
_PEAK, _CURVE = 2.0, 7.7
_CHROMA_MASS = _PEAK - _CURVE / 12  # the integral of the density over [0, 1]


def chroma_cdf(sigma: torch.Tensor) -> torch.Tensor:
    """P(s <= sigma) under Chroma's distribution."""
    u = sigma.double() - 0.5
    return (_PEAK * (u + 0.5) - _CURVE / 3 * (u**3 + 0.125)) / _CHROMA_MASS


def chroma_inverse_cdf(p: torch.Tensor) -> torch.Tensor:
    """The sigma at which Chroma's CDF reaches ``p`` in [0, 1], in closed form (float64).

    With u = sigma - 0.5 the CDF is a cubic, (7.7/3) u^3 - 2 u + c = 0 with
    c = mass * p - 1 + 7.7/24. Its three roots are real (trigonometric form); the middle one,
    k = 1 below, is the one in [-0.5, 0.5].
    """
    a = _CURVE / 3
    c = _CHROMA_MASS * p.double() - 1 + _CURVE / 24
    q, minus_p = c / a, _PEAK / a  # depressed cubic u^3 + P u + q with P = -2/a
    radius = 2 * math.sqrt(minus_p / 3)
    angle = torch.acos((-1.5 * q / minus_p * math.sqrt(3 / minus_p)).clamp(-1.0, 1.0))
    u = radius * torch.cos(angle / 3 - 2 * math.pi / 3)
    return (u + 0.5).clamp(0.0, 1.0)


def sample_sigmas(
    batch_size: int,
    generator: torch.Generator,
    *,
    distribution: SigmaDistribution = "chroma",
    sigmoid_scale: float = 1.0,
    shift: float = 0.0,
) -> torch.Tensor:
    """Training noise levels in [0, 1], one per sample (float32, CPU). Each takes one draw.

    1. The draw: ``chroma`` (default) from Chroma's own distribution by inverting its CDF;
       ``logit_normal`` and ``simpletuner`` as ``sigmoid(scale * N(0, 1))`` (Flux's); ``uniform``.
    2. Optionally a Flux-style shift toward noise, ``shift*s / (1 + (shift-1)*s)`` (off by default).
    3. ``simpletuner`` only: SimpleTuner's tail map, ``s -> s**2`` below 0.5 and
       ``s -> 1 - (1-s)**2`` from 0.5 up. It pushes (0, 0.5) onto (0, 0.25) and [0.5, 1) onto
       [0.75, 1), so it never trains noise levels between 0.25 and 0.75; kept to reproduce
       SimpleTuner runs.
    """
    if distribution == "chroma":
        sigma = chroma_inverse_cdf(torch.rand(batch_size, generator=generator, dtype=torch.float64))
    elif distribution == "uniform":
        sigma = torch.rand(batch_size, generator=generator, dtype=torch.float64)
    else:
        sigma = torch.sigmoid(sigmoid_scale * torch.randn(batch_size, generator=generator, dtype=torch.float64))
    if shift and shift != 1.0:
        sigma = shift_sigmas(sigma, shift)
    if distribution == "simpletuner":
        sigma = simpletuner_tail_map(sigma)
    return sigma.float()


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * sigma / (1 + (shift - 1) * sigma)


def simpletuner_tail_map(sigma: torch.Tensor) -> torch.Tensor:
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
