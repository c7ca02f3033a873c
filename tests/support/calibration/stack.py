"""A reduced-depth, real-width Chroma transformer trained one step, to check how block figures add up.

The memory model predicts a whole training step from per-block measurements: checkpointed block
inputs, plus the block in backward, plus what lives outside the blocks. Measuring the real
transformer config with one or two blocks of each kind (and the engine's way of checkpointing)
checks that composition. torch and diffusers are imported inside functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chroma_studio.hardware.architecture import LORA_TARGET_MODULES
from support.calibration.meters import fill_random_weights, live_tensor_meter, weight_tensors


@dataclass(frozen=True)
class StackMeasurement:
    double_blocks: int
    single_blocks: int
    image_tokens: int
    text_tokens: int
    train_peak_bytes: int  # forward + backward of the flow-matching loss
    inference_peak_bytes: int  # one no-grad forward


def build_transformer(
    double_blocks: int, single_blocks: int, *, lora_target: str | None = "all", rank: int = 16, device: str = "cpu"
) -> Any:
    """The real Chroma transformer config with fewer blocks, random bf16 weights and a fp32 LoRA."""
    import torch
    from diffusers import ChromaTransformer2DModel

    from chroma_studio.hardware.architecture import read_model_config

    config = {k: v for k, v in read_model_config("transformer").items() if not k.startswith("_")}
    config.update(num_layers=double_blocks, num_single_layers=single_blocks)
    with torch.device("meta"):
        model = ChromaTransformer2DModel(**config)
    model = model.to_empty(device=device).to(torch.bfloat16)
    # a buffer computed in __init__ (the modulation index table) was lost on the meta device
    from diffusers.models.embeddings import get_timestep_embedding

    embed = model.time_text_embed
    out_dim = embed.mod_proj.shape[0]
    channels = embed.time_proj.num_channels
    embed.mod_proj = get_timestep_embedding(
        torch.arange(out_dim) * 1000, 2 * channels, flip_sin_to_cos=True, downscale_freq_shift=0
    ).to(device)
    fill_random_weights(model, device)
    model.requires_grad_(False)
    if lora_target:
        from peft import LoraConfig, inject_adapter_in_model

        names = [
            f"{prefix}.{i}.{name}"
            for prefix, kind, count in (
                ("transformer_blocks", "double", double_blocks),
                ("single_transformer_blocks", "single", single_blocks),
            )
            for i in range(count)
            for name in LORA_TARGET_MODULES[lora_target][kind]
        ]
        if names:
            model = inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=names), model)
            for name, param in model.named_parameters():
                if ".lora_" in name:
                    param.data = param.data.float()
                    param.requires_grad_(True)
    return model


def measure_stack(
    double_blocks: int,
    single_blocks: int,
    *,
    image_tokens: int,
    text_tokens: int = 64,
    device: str = "cpu",
    model: Any,
) -> StackMeasurement:
    """Peak bytes of a flow-matching training step and of a no-grad forward of a reduced-depth model.

    ``model`` comes from build_transformer; checkpoint its blocks first (the engine's
    ``enable_masked_checkpointing``) to measure a checkpointed step.
    """
    import torch

    side = round(image_tokens**0.5)
    generator = torch.Generator(device=device).manual_seed(2)
    latents = torch.randn(1, side * side, 64, generator=generator, device=device)
    noise = torch.randn(1, side * side, 64, generator=generator, device=device)
    text = torch.randn(1, text_tokens, 4096, generator=generator, device=device, dtype=torch.bfloat16)
    mask = torch.ones(1, text_tokens + side * side, dtype=torch.bool, device=device)
    mask[0, text_tokens // 2 : text_tokens] = False
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    img_ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).to(device, torch.bfloat16)
    txt_ids = torch.zeros(text_tokens, 3, device=device, dtype=torch.bfloat16)
    sigma = torch.full((1,), 0.5, device=device)
    fixed = [latents, noise, text, mask, img_ids, txt_ids, sigma, *weight_tensors(model)]

    def forward() -> Any:
        noisy = ((1 - sigma) * latents + sigma * noise).to(torch.bfloat16)
        return model(
            hidden_states=noisy,
            encoder_hidden_states=text,
            timestep=sigma.to(torch.bfloat16),
            img_ids=img_ids,
            txt_ids=txt_ids,
            attention_mask=mask,
            return_dict=False,
        )[0]

    live = live_tensor_meter(ignore=fixed)
    with live:
        prediction = forward()
        loss = torch.nn.functional.mse_loss(prediction.float(), noise - latents)
        loss.backward()
        del prediction, loss
    train_peak = live.peak
    for param in model.parameters():
        param.grad = None
    live = live_tensor_meter(ignore=fixed)
    with torch.no_grad(), live:
        prediction = forward()
        del prediction
    return StackMeasurement(
        double_blocks=double_blocks,
        single_blocks=single_blocks,
        image_tokens=side * side,
        text_tokens=text_tokens,
        train_peak_bytes=train_peak,
        inference_peak_bytes=live.peak,
    )
