"""Activation memory of Chroma's transformer, T5 and VAE, from measured coefficients.

Coefficients are bytes for one sample in bf16, as polynomials in the joint token count T
(image tokens + text tokens): ``c0 + c1*T + c2*T^2``. They were measured on real-width blocks
(dim 3072, 24 heads) with ``hardware/calibrate.py`` and are re-measured and compared by
``tests/benchmarks/memory_model.py``:

- ``saved``: what one block keeps for backward after its forward (saved-tensor hooks, storages
  counted once, weights and the block's inputs left out);
- ``train_peak``: the most a block holds while its forward and backward run;
- ``inference_peak``: the most a block holds in a no-grad forward.

The quadratic term is the pairwise text mask (T x T), the only quadratic tensor: attention
runs as a fused kernel that never materialises the T x T scores (flash attention on the CPU;
memory-efficient SDPA on CUDA/ROCm, which Chroma's mask selects). Backends that fall back to
the math kernel (some MPS versions) need more at high resolutions.

LoRA is added analytically, and the benchmark checks it: peft casts a layer's bf16 input to the
fp32 LoRA dtype and ``lora_A`` saves that copy, so each adapted Linear(in, out) of rank r keeps
``4 * (in + r)`` bytes per token of its stream. quanto's linear function also saves every input
(``quanto_saved``); bitsandbytes' 4-bit matmul saves none.
"""

from __future__ import annotations

from dataclasses import dataclass

from chroma_studio.hardware.architecture import ChromaArchitecture

# Measured with calibrate.measure_block_coefficients (bf16, batch 1, CPU, torch 2.13).
BLOCK_COEFFICIENTS: dict[str, dict[str, tuple[float, float, float]]] = {
    "double": {
        "saved": (0.0, 80212.911, 1.984),
        "train_peak": (-3121144.0, 147752.0, 2.0),
        "inference_peak": (1310720.0, 66048.0, 3.5),
        "quanto_saved": (0.0, 36864.0, 0.0),
    },
    "single": {
        "saved": (0.0, 74031.228, 1.996),
        "train_peak": (6152.0, 165988.0, 0.0),
        "inference_peak": (0.0, 92160.0, 1.0),
        "quanto_saved": (0.0, 36864.0, 0.0),
    },
}
# Outside the blocks (embedders, modulation, rotary tables, final layer, loss): a reduced-depth
# real-width model trained one step (calibrate_stack.measure_stack) peaks within 6% below
# "checkpointed inputs + the block in backward" alone, so nothing is added for them.
OUTSIDE_TRAIN_PER_TOKEN = 0.0
OUTSIDE_INFERENCE_PER_TOKEN = 0.0
# VAE peaks per output pixel (bf16, no grad), measured with calibrate.measure_vae: exactly linear.
VAE_ENCODE_PER_PIXEL = 1280.0
VAE_DECODE_PER_PIXEL = 1536.0

# T5-v1.1-XXL widths (resources/models/text_encoder/config.json).
T5_D_MODEL, T5_D_FF, T5_HEADS = 4096, 10240, 64

# The text stream of a double block: these layers see only the text tokens.
_TEXT_STREAM = ("attn.add_", "attn.to_add_out", "ff_context.")


def _poly(c: tuple[float, float, float], tokens: int, batch: int) -> float:
    return max(0.0, c[0] + batch * (c[1] * tokens + c[2] * tokens * tokens))


@dataclass(frozen=True)
class TokenCounts:
    image: int
    text: int

    @property
    def joint(self) -> int:
        return self.image + self.text


def image_tokens(resolution: int) -> int:
    """Packed latent tokens of a square image: the VAE downsamples 8x, packing 2x2 more."""
    return (resolution // 16) ** 2


def lora_saved_bytes(arch: ChromaArchitecture, kind: str, target: str | None, rank: int, tokens: TokenCounts) -> int:
    """Per block and sample: the fp32 input copies and ``lora_A`` outputs the adapted layers keep."""
    if not target:
        return 0
    return sum(
        4 * (lin.in_features + rank) * stream_tokens(kind, lin.name, tokens) for lin in arch.lora_modules(target, kind)
    )


def stream_tokens(kind: str, name: str, tokens: TokenCounts) -> int:
    """Tokens a block's layer sees: double blocks run text and image in separate layers."""
    if kind == "single":
        return tokens.joint
    return tokens.text if name.startswith(_TEXT_STREAM) else tokens.image


def quantized_backward_scratch(arch: ChromaArchitecture, precision: str, dtype_bytes: int) -> int:
    """Transient bytes while a quantized layer runs backward (one layer at a time).

    quanto dequantizes the weight to the compute dtype (int8: the int->float copy and the scaled
    result; int4 also unpacks through an identity matrix of in x in); bitsandbytes dequantizes the
    NF4 weight once. Read from the libraries' code: the CPU meter cannot see inside their
    tensor subclasses.
    """
    largest = max((lin for k in ("double", "single") for lin in arch.linears(k)), key=lambda lin: lin.weights)
    if precision == "int8-quanto":
        return 2 * largest.weights * dtype_bytes
    if precision == "int4-quanto":
        return 2 * largest.weights * dtype_bytes + largest.in_features**2 * 2 + largest.weights
    if precision == "nf4-bnb":
        return largest.weights * dtype_bytes
    return 0


@dataclass(frozen=True)
class BlockBytes:
    saved: float  # kept for backward after the forward
    train_peak: float  # at most, while forward and backward run
    inputs: int  # the block's inputs (what checkpointing keeps)


def block_bytes(
    arch: ChromaArchitecture,
    kind: str,
    tokens: TokenCounts,
    *,
    batch: int = 1,
    lora_target: str | None = None,
    rank: int = 16,
    quanto: bool = False,
    dtype_bytes: int = 2,
) -> BlockBytes:
    """One block's activation bytes for a micro-batch (coefficients for bf16; fp32 doubles them)."""
    c = BLOCK_COEFFICIENTS[kind]
    scale = dtype_bytes / 2
    lora = batch * lora_saved_bytes(arch, kind, lora_target, rank, tokens) if lora_target else 0
    extra = _poly(c["quanto_saved"], tokens.joint, batch) * scale if quanto else 0.0
    saved = _poly(c["saved"], tokens.joint, batch) * scale + lora + extra
    peak = _poly(c["train_peak"], tokens.joint, batch) * scale + lora + extra
    return BlockBytes(saved, peak, batch * tokens.joint * arch.dim * dtype_bytes)


@dataclass(frozen=True)
class TrainingActivations:
    held: int  # checkpointed block inputs (or every block's saved tensors without checkpointing)
    working: int  # the block being recomputed / run backward, at its peak
    outside: int  # embeddings, modulation, rotary tables, final layer and loss
    scratch: int  # quantized layers' backward scratch

    @property
    def total(self) -> int:
        return self.held + self.working + self.outside + self.scratch


def training_activations(
    arch: ChromaArchitecture,
    tokens: TokenCounts,
    *,
    batch: int,
    checkpointing: bool,
    lora_target: str,
    rank: int,
    precision: str,
    dtype_bytes: int,
    blocks: dict[str, int] | None = None,
) -> TrainingActivations:
    """Activation bytes of one training micro-batch at its peak (during the first block's backward).

    ``blocks`` overrides the block counts (for checking a reduced-depth model against measurements).
    """
    counts = blocks or {"double": arch.double_blocks, "single": arch.single_blocks}
    held = 0
    working = 0
    for kind, count in counts.items():
        b = block_bytes(
            arch,
            kind,
            tokens,
            batch=batch,
            lora_target=lora_target,
            rank=rank,
            quanto=precision.endswith("-quanto"),
            dtype_bytes=dtype_bytes,
        )
        if checkpointing:
            held += count * b.inputs
            working = max(working, int(b.train_peak))
        else:
            held += count * int(b.saved + b.inputs)
            working = max(working, int(b.train_peak - b.saved))
    outside = int(batch * tokens.joint * OUTSIDE_TRAIN_PER_TOKEN * dtype_bytes / 2)
    scratch = quantized_backward_scratch(arch, precision, dtype_bytes)
    return TrainingActivations(held=held, working=working, outside=outside, scratch=scratch)


def inference_activations(arch: ChromaArchitecture, tokens: TokenCounts, *, dtype_bytes: int, lora_rank: int) -> int:
    """Peak bytes of one no-grad transformer forward (a denoising step; CFG runs its passes one by one)."""
    scale = dtype_bytes / 2
    block = max(_poly(BLOCK_COEFFICIENTS[k]["inference_peak"], tokens.joint, 1) for k in ("double", "single"))
    stream = 2 * tokens.joint * arch.dim * dtype_bytes  # the residual stream in and out of the block
    widest = max(lin.in_features for k in ("double", "single") for lin in arch.linears(k))
    lora_cast = 4 * (widest + lora_rank) * tokens.joint if lora_rank else 0
    outside = tokens.joint * OUTSIDE_INFERENCE_PER_TOKEN
    return int((block + outside) * scale + stream + lora_cast)


def t5_activations(*, batch: int, tokens: int, dtype_bytes: int) -> int:
    """Peak bytes of one T5-XXL encoder layer in a no-grad forward (SDPA attention).

    The gated FFN holds three d_ff-wide tensors and the residual stream a few d_model-wide ones;
    the relative position bias plus the padding mask is a (batch, heads, T, T) additive mask. Fitted
    to a real-width layer measured with the live-tensor meter (batch 8 at 128 and 512 tokens, batch
    1 at 512: within 4%; it overshoots by up to 20% in between, on the safe side).
    """
    per_token = (3 * T5_D_FF + 4 * T5_D_MODEL) * dtype_bytes
    mask = (batch + 1) * T5_HEADS * tokens * tokens * dtype_bytes * 1.3
    return int(batch * tokens * per_token + mask)


def vae_activations(resolution: int, *, decode: bool, dtype_bytes: int) -> int:
    per_pixel = VAE_DECODE_PER_PIXEL if decode else VAE_ENCODE_PER_PIXEL
    return int(resolution * resolution * per_pixel * dtype_bytes / 2)
