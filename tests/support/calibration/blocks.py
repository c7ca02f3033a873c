"""Measuring the activation memory of real Chroma layers, to calibrate and check the memory model.

Builds real-width blocks (dim 3072, 24 heads) and the real VAE with random weights, runs them in
bf16 and measures them with the meters in ``meters.py``; fits the polynomials that
``activations.py`` keeps as data. Run by ``tests/benchmarks/memory_model.py`` and, at small
widths, by the unit tests. torch, diffusers, peft and optimum-quanto are imported inside functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from chroma_studio.hardware.architecture import LORA_TARGET_MODULES
from support.calibration.meters import SavedTensorMeter, fill_random_weights, live_tensor_meter, weight_tensors

logger = logging.getLogger(__name__)


# -- real-width blocks ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlockMeasurement:
    """Bytes one transformer block needs at ``tokens`` joint tokens (``text_tokens`` of them text)."""

    kind: str  # "double" | "single"
    tokens: int
    text_tokens: int
    lora_target: str | None
    quantize: str | None
    saved_bytes: int  # kept for backward after its forward (what a checkpoint recompute holds)
    train_peak_bytes: int  # peak during forward + backward, saved tensors and gradients in flight
    inference_peak_bytes: int  # peak during a no-grad forward


def build_block(
    kind: str,
    *,
    dim: int = 3072,
    heads: int = 24,
    head_dim: int = 128,
    dtype: Any = None,
    lora_target: str | None = None,
    rank: int = 16,
    quantize: str | None = None,
    device: str = "cpu",
) -> Any:
    """One Chroma block with random weights, frozen, optionally quantized (quanto) and with a fp32 LoRA."""
    import torch
    from diffusers.models.transformers.transformer_chroma import ChromaSingleTransformerBlock, ChromaTransformerBlock

    dtype = dtype or torch.bfloat16
    cls = ChromaTransformerBlock if kind == "double" else ChromaSingleTransformerBlock
    with torch.device("meta"):
        block = cls(dim, heads, head_dim)
    block = block.to_empty(device=device).to(dtype)
    fill_random_weights(block, device, zero_biases=False)
    block.requires_grad_(False)
    if quantize:
        from optimum import quanto

        quanto.quantize(block, weights={"int8": quanto.qint8, "int4": quanto.qint4}[quantize])
        quanto.freeze(block)
    if lora_target:
        names = LORA_TARGET_MODULES[lora_target][kind]
        if names:
            from peft import LoraConfig, inject_adapter_in_model

            block = inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(names)), block)
            for name, param in block.named_parameters():
                if ".lora_" in name:
                    param.data = param.data.float()
                    param.requires_grad_(True)
    return block


def block_inputs(kind: str, tokens: int, text_tokens: int, dim: int, dtype: Any, device: str = "cpu") -> tuple:
    """(args, kwargs) for a block's forward: hidden states, modulation, rotary embedding and mask."""
    import torch
    from diffusers.models.transformers.transformer_flux import FluxPosEmbed

    generator = torch.Generator(device=device).manual_seed(1)

    def rand(*shape: int, grad: bool = False) -> Any:
        return torch.randn(*shape, generator=generator, device=device, dtype=dtype).requires_grad_(grad)

    ids = torch.zeros(tokens, 3, device=device)
    ids[text_tokens:, 1] = torch.arange(tokens - text_tokens, device=device) // 64
    ids[text_tokens:, 2] = torch.arange(tokens - text_tokens, device=device) % 64
    rotary = FluxPosEmbed(theta=10000, axes_dim=[16, 56, 56])(ids)
    mask = torch.ones(1, tokens, dtype=torch.bool, device=device)
    mask[0, text_tokens // 2 : text_tokens] = False  # some padding, as real captions have
    if kind == "double":
        args = (rand(1, tokens - text_tokens, dim, grad=True), rand(1, text_tokens, dim, grad=True), rand(1, 12, dim))
    else:
        args = (rand(1, tokens, dim, grad=True), rand(1, 3, dim))
    return args, {"image_rotary_emb": rotary, "attention_mask": mask}


def _leaves(args: tuple, kwargs: dict) -> list[Any]:
    import torch

    items = [*args, *kwargs["image_rotary_emb"], kwargs["attention_mask"]]
    return [t for t in items if isinstance(t, torch.Tensor)]


def _outputs_loss(out: Any) -> Any:
    outs = out if isinstance(out, tuple) else (out,)
    return sum(o.float().square().mean() for o in outs)


def measure_block(
    kind: str,
    *,
    tokens: int,
    text_tokens: int = 64,
    dim: int = 3072,
    heads: int = 24,
    head_dim: int = 128,
    lora_target: str | None = None,
    rank: int = 16,
    quantize: str | None = None,
    device: str = "cpu",
    block: Any = None,
) -> BlockMeasurement:
    """Run one block forward and backward in bf16 and measure what it holds; see BlockMeasurement."""
    import torch

    dtype = torch.bfloat16
    block = block or build_block(
        kind,
        dim=dim,
        heads=heads,
        head_dim=head_dim,
        dtype=dtype,
        lora_target=lora_target,
        rank=rank,
        quantize=quantize,
        device=device,
    )
    args, kwargs = block_inputs(kind, tokens, text_tokens, dim, dtype, device)
    fixed = [*_leaves(args, kwargs), *weight_tensors(block)]

    saved = SavedTensorMeter(ignore=fixed)
    live = live_tensor_meter(ignore=fixed)
    with live:
        with saved:
            out = block(*args, **kwargs)
        loss = _outputs_loss(out)
        loss.backward()
        del out, loss
    train_peak = live.peak
    for t in args:
        t.grad = None
    for p in block.parameters():
        p.grad = None

    live = live_tensor_meter(ignore=fixed)
    with torch.no_grad(), live:
        out = block(*args, **kwargs)
        del out
    return BlockMeasurement(
        kind=kind,
        tokens=tokens,
        text_tokens=text_tokens,
        lora_target=lora_target,
        quantize=quantize,
        saved_bytes=saved.bytes,
        train_peak_bytes=train_peak,
        inference_peak_bytes=live.peak,
    )


# -- the VAE ---------------------------------------------------------------------------------------
def measure_vae(resolution: int, *, decode: bool, device: str = "cpu", vae: Any = None) -> int:
    """Peak bytes of one no-grad VAE encode (or decode) of a ``resolution`` square image in bf16."""
    import torch

    vae = vae or build_vae(device)
    generator = torch.Generator(device=device).manual_seed(0)
    if decode:
        x = torch.randn(1, 16, resolution // 8, resolution // 8, generator=generator, device=device)
    else:
        x = torch.rand(1, 3, resolution, resolution, generator=generator, device=device) * 2 - 1
    x = x.to(torch.bfloat16)
    live = live_tensor_meter(ignore=[x, *weight_tensors(vae)])
    with torch.no_grad(), live:
        out = vae.decode(x).sample if decode else vae.encode(x).latent_dist.mode()
        del out
    return live.peak


def build_vae(device: str = "cpu") -> Any:
    """The real Flux VAE architecture with random weights, in bf16."""
    import torch
    from diffusers import AutoencoderKL

    from chroma_studio.hardware.architecture import read_model_config

    config = {k: v for k, v in read_model_config("vae").items() if not k.startswith("_")}
    with torch.device("meta"):
        vae = AutoencoderKL(**config)
    vae = vae.to_empty(device=device).to(torch.bfloat16)
    fill_random_weights(vae, device)
    return vae.eval().requires_grad_(False)


# -- coefficients for the memory model -------------------------------------------------------------
def fit_polynomial(points: list[tuple[int, float]], *, constant: bool = True) -> list[float]:
    """[c0, c1, c2] of bytes = c0 + c1*T + c2*T^2 fitted to (T, bytes) points (c0 = 0 unless ``constant``)."""
    import numpy as np

    t = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    columns = [np.ones_like(t), t, t * t] if constant else [t, t * t]
    solution, *_ = np.linalg.lstsq(np.stack(columns, axis=1), y, rcond=None)
    coefficients = list(solution) if constant else [0.0, *solution]
    return [round(float(c), 3) for c in coefficients]


def measure_block_coefficients(
    kind: str,
    lengths: tuple[int, ...] = (512, 1024, 2048),
    *,
    text_tokens: int = 64,
    dim: int = 3072,
    heads: int = 24,
    head_dim: int = 128,
    quanto_lengths: tuple[int, ...] = (512, 1024),
    device: str = "cpu",
) -> dict[str, list[float]]:
    """Fit the per-block polynomials the memory model uses: bf16 base block, no LoRA.

    ``saved``, ``train_peak`` and ``inference_peak`` for the plain block; ``quanto_saved`` is
    the extra a quanto-quantized block saves (its linear function keeps every input).
    """
    block = build_block(kind, dim=dim, heads=heads, head_dim=head_dim, device=device)
    rows: dict[str, list[tuple[int, float]]] = {"saved": [], "train_peak": [], "inference_peak": []}
    for tokens in lengths:
        m = measure_block(kind, tokens=tokens, text_tokens=text_tokens, dim=dim, block=block, device=device)
        rows["saved"].append((tokens, m.saved_bytes))
        rows["train_peak"].append((tokens, m.train_peak_bytes))
        rows["inference_peak"].append((tokens, m.inference_peak_bytes))
    plain = {tokens: saved for tokens, saved in rows["saved"]}
    block = build_block(kind, dim=dim, heads=heads, head_dim=head_dim, quantize="int8", device=device)
    extra = []
    for tokens in quanto_lengths:
        m = measure_block(kind, tokens=tokens, text_tokens=text_tokens, dim=dim, block=block, device=device)
        base = plain.get(tokens)
        if base is None:
            base = measure_block(kind, tokens=tokens, text_tokens=text_tokens, dim=dim, heads=heads, device=device)
            base = base.saved_bytes
        extra.append((tokens, m.saved_bytes - base))
    result = {
        "saved": fit_polynomial(rows["saved"], constant=False),
        "train_peak": fit_polynomial(rows["train_peak"]),
        "inference_peak": fit_polynomial(rows["inference_peak"]),
    }
    per_token = sum(b for _, b in extra) / sum(t for t, _ in extra)
    result["quanto_saved"] = [0.0, round(per_token, 3), 0.0]
    return result
