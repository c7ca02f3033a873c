"""One flow-matching training step for Chroma, written out once with its math."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chroma_studio.training.text import apply_t5_padding, joint_attention_mask


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2 * W/2, C*4): each 2x2 patch of latent pixels becomes one token."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of pack_latents for a latent of ``height`` x ``width``."""
    b, _, d = tokens.shape
    c = d // 4
    x = tokens.view(b, height // 2, width // 2, c, 2, 2)
    x = x.permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, height, width)


def image_ids(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H/2 * W/2, 3) rotary positions of the packed tokens: (0, row, col)."""
    rows = torch.arange(height // 2, device=device, dtype=dtype)
    cols = torch.arange(width // 2, device=device, dtype=dtype)
    grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
    return torch.cat([torch.zeros_like(grid[:, :1]), grid], dim=1)


@dataclass
class StepInputs:
    """One micro-batch, already on the device. ``latents`` are VAE latents after shift and scale."""

    latents: torch.Tensor  # (B, 16, H, W)
    text_embeds: torch.Tensor  # (B, S, 4096), visible rows then zeros
    text_mask: torch.Tensor  # (B, S) bool
    sigmas: torch.Tensor  # (B,) float32 in (0, 1)
    noise: torch.Tensor  # (B, 16, H, W)


def flow_matching_loss(
    transformer: torch.nn.Module, batch: StepInputs, *, dtype: torch.dtype, t5_padding: str = "unmodified"
) -> torch.Tensor:
    """The rectified-flow loss of one micro-batch.

    The model sees ``x_sigma = (1 - sigma) * x0 + sigma * noise`` at ``timestep = sigma`` (the
    transformer multiplies by 1000 itself; Chroma takes no guidance input) and predicts the
    velocity ``noise - x0``; the loss is their mean squared error, in float32.
    """
    x0 = batch.latents.float()
    noise = batch.noise.float()
    sigma = batch.sigmas.float().view(-1, 1, 1, 1)
    noisy = (1.0 - sigma) * x0 + sigma * noise
    target = noise - x0

    height, width = x0.shape[-2:]
    tokens = pack_latents(noisy).to(dtype)
    embeds = apply_t5_padding(batch.text_embeds, batch.text_mask, t5_padding).to(dtype)
    device = tokens.device
    prediction = transformer(
        hidden_states=tokens,
        encoder_hidden_states=embeds,
        timestep=batch.sigmas.to(device=device, dtype=dtype),
        img_ids=image_ids(height, width, device=device, dtype=dtype),
        txt_ids=torch.zeros((embeds.shape[1], 3), device=device, dtype=dtype),
        attention_mask=joint_attention_mask(batch.text_mask, tokens.shape[1]),
        return_dict=False,
    )[0]
    return F.mse_loss(prediction.float(), pack_latents(target), reduction="mean")
