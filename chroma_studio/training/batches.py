"""A micro-batch's tensors from the embedding cache, with each sample's own seeded draws."""

from __future__ import annotations

import torch

from chroma_studio.config import TrainingConfig
from chroma_studio.training.data import MicroBatch
from chroma_studio.training.prepare import PreparedRun
from chroma_studio.training.schedule import sample_sigmas
from chroma_studio.training.step import StepInputs
from chroma_studio.training.text import collate_text


def sample_seed(seed: int, sample: int) -> int:
    """A generator seed per sample (its global index in the seeded data order): the same sample
    draws the same caption dropout, sigma and noise at any batch size, and a resumed run too."""
    return (seed * 0x9E3779B97F4A7C15 + sample * 0xBF58476D1CE4E5B9) % (2**63)


def make_batch(config: TrainingConfig, run: PreparedRun, micro_batch: MicroBatch) -> tuple[StepInputs, torch.Tensor]:
    """Cached latents and text for a micro-batch on the run's device; and the sigmas drawn, on the
    CPU, for the log."""
    captions, latents, sigmas, noise = [], [], [], []
    for example_index, sample in zip(micro_batch.examples, micro_batch.samples, strict=True):
        generator = torch.Generator().manual_seed(sample_seed(config.optim.seed, sample))
        dropped = torch.rand(1, generator=generator).item() < config.text.caption_dropout_probability
        captions.append("" if dropped else run.examples[example_index].caption)
        latent = run.cache.get("latent", run.latent_keys[example_index])
        sigmas.append(
            sample_sigmas(
                1,
                generator,
                distribution=run.sigma_distribution,
                sigmoid_scale=config.optim.flow_sigmoid_scale,
                shift=config.optim.flow_schedule_shift,
            )
        )
        noise.append(torch.randn(latent.shape, generator=generator))
        latents.append(latent)
    text, mask = collate_text([run.cache.get("text", run.text_keys[c]) for c in captions])
    drawn, device = torch.cat(sigmas), run.device
    inputs = StepInputs(
        torch.stack(latents).to(device),
        text.to(device),
        mask.to(device),
        drawn.to(device),
        torch.stack(noise).to(device),
    )
    return inputs, drawn
