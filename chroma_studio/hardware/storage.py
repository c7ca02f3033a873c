"""How the transformer's and T5's weights are stored, in bytes: bf16, quanto int8/int4, bitsandbytes NF4.

bf16 2 bytes; quanto int8 1 byte + one scale per output channel; quanto int4 half a byte + a scale
and a shift per group of 128; bitsandbytes NF4 half a byte + an 8-bit absmax per block of 64 and an
fp32 absmax per 256 of those (double quantization). The embedders, the modulation approximator and
the final layer, and every bias and norm, stay in the compute dtype.
"""

from __future__ import annotations

from chroma_studio.hardware.architecture import ChromaArchitecture
from chroma_studio.hardware.phases import Part


def dtype_bytes(mixed_precision: str) -> int:
    return 4 if mixed_precision == "no" else 2


def quantized_bytes(weights: int, out_channels: int, precision: str, scale_bytes: int) -> tuple[int, int]:
    """(packed weights, scales) of Linear weights stored at ``precision``."""
    if precision == "int8-quanto":
        return weights, out_channels * scale_bytes
    if precision == "int4-quanto":
        return weights // 2, (weights // 128) * 2 * scale_bytes
    if precision == "nf4-bnb":
        blocks = weights // 64
        return weights // 2, blocks + (blocks // 256) * 4
    return weights * scale_bytes, 0


def transformer_weight_parts(
    arch: ChromaArchitecture, precision: str, mixed_precision: str, streamed: dict[str, int] | None = None
) -> list[Part]:
    """The transformer's weights on the device; ``streamed`` blocks (per kind) live in RAM instead."""
    dbytes = dtype_bytes(mixed_precision)
    gone = streamed or {}
    resident = {k: arch.blocks(k) - gone.get(k, 0) for k in ("double", "single")}
    where = " of the resident blocks" if any(gone.values()) else ""
    if precision == "no_change":
        name = {"bf16": "bf16", "fp16": "fp16"}.get(mixed_precision, "fp32")
        params = arch.transformer_params - sum(gone.get(k, 0) * arch.block_params(k) for k in resident)
        return [Part(f"transformer weights ({name}){where}", params * dbytes)]
    weights = sum(resident[k] * sum(lin.weights for lin in arch.linears(k)) for k in resident)
    out_channels = sum(resident[k] * sum(lin.out_features for lin in arch.linears(k)) for k in resident)
    packed, scales = quantized_bytes(weights, out_channels, precision, dbytes)
    label = {"int8-quanto": "int8", "int4-quanto": "int4", "nf4-bnb": "NF4"}[precision]
    biases = sum(
        resident[k] * (sum(lin.out_features for lin in arch.linears(k)) + arch.other_params(k)) for k in resident
    )
    kept = (arch.unquantized_params + biases) * dbytes
    return [
        Part(f"transformer weights ({label}){where}", packed),
        Part(f"{label} scales", scales),
        Part("unquantized layers, biases and norms", kept),
    ]


def t5_weight_bytes(arch: ChromaArchitecture, precision: str, dbytes: int) -> int:
    linear = arch.t5_params - arch.t5_embedding_params
    if precision == "no_change":
        return arch.t5_params * dbytes
    packed, scales = quantized_bytes(linear, linear // 4096, precision, dbytes)
    return packed + scales + arch.t5_embedding_params * dbytes


def block_storage_bytes(arch: ChromaArchitecture, kind: str, precision: str, dtype_bytes: int) -> int:
    """One block's frozen parameters as stored: its Linear weights at ``precision`` (with their
    scales), its biases and norms in the compute dtype. What streaming that block copies and keeps in RAM."""
    if precision == "no_change":
        return arch.block_params(kind) * dtype_bytes
    weights = 0
    for lin in arch.linears(kind):
        packed, scales = quantized_bytes(lin.weights, lin.out_features, precision, dtype_bytes)
        weights += packed + scales
    biases = sum(lin.out_features for lin in arch.linears(kind)) + arch.other_params(kind)
    return weights + biases * dtype_bytes
