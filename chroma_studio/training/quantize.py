"""Quantizing the frozen base transformer: optimum-quanto int8/int4, or NF4 via bitsandbytes.

The embedders, the modulation approximator and the final layers stay unquantized: they are a
small share of the weights and the most sensitive to rounding. quanto quantizes one block at a
time on the training device, so the peak is the quantized model plus one full-precision block,
not a full-precision copy of all 8.9B weights. Blocks that stream from host RAM (streaming.py)
go back to the host right after they are quantized, so the device never holds them all.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import torch

from chroma_studio.training.errors import TrainingError

logger = logging.getLogger(__name__)

UNQUANTIZED = ("x_embedder", "context_embedder", "time_text_embed", "distilled_guidance_layer", "norm_out", "proj_out")
QUANTO = {"int8-quanto": "qint8", "int4-quanto": "qint4"}


def quantize_transformer(
    transformer: torch.nn.Module,
    precision: str,
    device: torch.device,
    host_blocks: Collection[torch.nn.Module] = (),
) -> torch.nn.Module:
    """Quantize the transformer blocks in place with quanto and move everything to ``device``,
    except the ``host_blocks``, which are quantized there and parked in host RAM to stream."""
    from chroma_studio.training.streaming import park_on_host, place_resident

    if precision == "no_change":
        place_resident(transformer, device, list(host_blocks))
        return transformer
    if precision not in QUANTO:
        raise ValueError(f"quantize_transformer does not handle {precision!r}")
    from optimum import quanto

    weights = getattr(quanto, QUANTO[precision])
    for name, module in transformer.named_children():
        if name in UNQUANTIZED:
            module.to(device)
            continue
        blocks = list(module) if isinstance(module, torch.nn.ModuleList) else [module]
        for block in blocks:
            block.to(device)
            quanto.quantize(block, weights=weights)
            quanto.freeze(block)
            release_host_heap()  # the block's full-precision temporaries
            if any(block is b for b in host_blocks):
                park_on_host(block)
    place_resident(transformer, device, list(host_blocks))  # buffers of the root module
    logger.info("quantized the transformer to %s", precision)
    return transformer


def release_host_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    Quantizing a block on the CPU allocates its full-precision temporaries between the int8
    results it keeps; glibc keeps the freed holes mapped, so without this the process held 1.8x
    the int8 bytes per block: 12.4 GB of anonymous memory after quantizing the whole transformer
    to int8 instead of 8.4 GB (measured on Linux), memory the OS could not give to anyone.
    Trimming takes milliseconds.
    """
    import contextlib
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):  # another C library (musl) has no malloc_trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def nf4_quantization_config(compute_dtype: torch.dtype):
    """The diffusers BitsAndBytesConfig for NF4 loading; refuses where bitsandbytes cannot run."""
    if not torch.cuda.is_available():
        raise TrainingError(
            "nf4-bnb needs an NVIDIA GPU with CUDA.",
            "Choose int4-quanto instead (base_model_precision), which works on every device.",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TrainingError(
            "nf4-bnb needs the bitsandbytes package, which is not installed.",
            "Install it with: pip install 'chroma-studio[nf4]', or choose int4-quanto.",
        ) from None
    from diffusers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
        # diffusers matches these against bare child names too, so "proj_out" here would also keep
        # all 38 single-block proj_out layers (1.8B weights) in bf16; only the tiny final
        # projection (3072 -> 64) is quantized as a result.
        llm_int8_skip_modules=["x_embedder", "context_embedder", "distilled_guidance_layer"],
    )


def is_quantized(transformer: torch.nn.Module) -> bool:
    return any(type(m).__module__.startswith(("optimum.quanto", "bitsandbytes")) for m in transformer.modules())
