"""The activation coefficients against measurements of real Chroma blocks at a small width.

The coefficients were measured at the real width (3072); bytes per token scale with the width
(heads grow with it at 128 per head), so a 256-wide block must land on the same curve. The
real-width comparison lives in tests/benchmarks/memory_model.py.
"""

from __future__ import annotations

import pytest
from support.calibration.blocks import build_block, measure_block, measure_vae

from chroma_studio.hardware import activations as act
from chroma_studio.hardware.architecture import chroma_architecture

DIM, HEADS = 256, 2
SCALE = DIM / 3072
ARCH = chroma_architecture()


def predicted_saved(kind: str, tokens: int) -> float:
    c = act.BLOCK_COEFFICIENTS[kind]["saved"]
    return c[1] * SCALE * tokens + c[2] * tokens * tokens


@pytest.fixture(scope="module")
def plain():
    return {kind: build_block(kind, dim=DIM, heads=HEADS) for kind in ("double", "single")}


@pytest.mark.parametrize("kind", ["double", "single"])
@pytest.mark.parametrize("tokens", [256, 512])
def test_saved_bytes_follow_the_measured_curve(plain, kind, tokens):
    measured = measure_block(kind, tokens=tokens, text_tokens=64, dim=DIM, heads=HEADS, block=plain[kind])
    assert measured.saved_bytes == pytest.approx(predicted_saved(kind, tokens), rel=0.03)
    assert measured.train_peak_bytes > measured.saved_bytes > measured.inference_peak_bytes / 2


def scaled_lora_bytes(kind: str, target: str, rank: int, tokens: act.TokenCounts) -> int:
    total = 0
    for lin in ARCH.lora_modules(target, kind):
        width = lin.in_features * DIM // 3072
        total += 4 * (width + rank) * act.stream_tokens(kind, lin.name, tokens)
    return total


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["double", "single"])
@pytest.mark.parametrize("target", ["all+ffs", "context"])
def test_lora_adds_an_fp32_copy_of_each_adapted_input(plain, kind, target):
    tokens = act.TokenCounts(image=448, text=64)
    base = measure_block(kind, tokens=tokens.joint, text_tokens=tokens.text, dim=DIM, heads=HEADS, block=plain[kind])
    lora_block = build_block(kind, dim=DIM, heads=HEADS, lora_target=target, rank=8)
    lora = measure_block(kind, tokens=tokens.joint, text_tokens=tokens.text, dim=DIM, heads=HEADS, block=lora_block)
    expected = scaled_lora_bytes(kind, target, 8, tokens)
    assert lora.saved_bytes - base.saved_bytes == pytest.approx(expected, rel=0.02, abs=1024)


@pytest.mark.parametrize("kind", ["double", "single"])
def test_quanto_saves_the_inputs_of_its_linears(plain, kind):
    tokens = 512
    base = measure_block(kind, tokens=tokens, text_tokens=64, dim=DIM, heads=HEADS, block=plain[kind])
    quantized = build_block(kind, dim=DIM, heads=HEADS, quantize="int8")
    measured = measure_block(kind, tokens=tokens, text_tokens=64, dim=DIM, heads=HEADS, block=quantized)
    per_token = act.BLOCK_COEFFICIENTS[kind]["quanto_saved"][1] * SCALE
    assert measured.saved_bytes - base.saved_bytes == pytest.approx(per_token * tokens, rel=0.03)


@pytest.mark.slow
def test_vae_encode_and_decode_scale_with_pixels():
    assert measure_vae(64, decode=False) == pytest.approx(act.VAE_ENCODE_PER_PIXEL * 64 * 64, rel=0.05)
    assert measure_vae(64, decode=True) == pytest.approx(act.VAE_DECODE_PER_PIXEL * 64 * 64, rel=0.05)


def test_image_tokens_pack_2x2_latent_pixels():
    assert act.image_tokens(1024) == 4096
    assert act.image_tokens(512) == 1024
