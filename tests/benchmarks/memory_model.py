"""Predicted vs measured memory for the Chroma memory model; prints one JSON document.

    python tests/benchmarks/memory_model.py              # the checks (a few minutes on a laptop CPU)
    python tests/benchmarks/memory_model.py --calibrate  # re-measure the coefficients activations.py keeps
    python tests/benchmarks/memory_model.py --tiers      # only the small-card tiers at 1024 px (no torch)

What this machine can measure:
- parameter counts of the real configs, built on the meta device (must match exactly);
- bytes real-width blocks (dim 3072) save for backward and hold at their peak, plain, with LoRA and
  quantized with quanto, at a token count the coefficients were not fitted on (within 10%);
- a reduced-depth real-width transformer trained one step with the engine's checkpointing, against
  the model's composition of block figures;
- the VAE and one T5-XXL layer;
- with CUDA: the same reduced-depth step's peak ``torch.cuda.max_memory_allocated`` at 1024 px, and
  how much the caching allocator reserved on top;
- predicted, not measured: the peaks of 6, 8 and 12 GB cards at 1024 px (16 and 32 GB of RAM) with
  what the recommendation picks there, the blocks it streams and their modelled slowdown, and the
  presets for those cards.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support

from support.calibration.architecture import count_architecture

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import activations as act
from chroma_studio.hardware.architecture import CACHED_COUNTS, chroma_architecture
from chroma_studio.hardware.memory import (
    QUICKSTART_ASSUMPTIONS,
    QUICKSTART_FIGURES_GB,
    QUICKSTART_SETTINGS,
    estimate_memory,
)

ARCH = chroma_architecture()
GiB = 2**30
CHECK_TOKENS = 1536  # between the calibration lengths (512, 1024, 2048)
TEXT_TOKENS = 64


def error(measured: float, predicted: float) -> float:
    return round(measured / predicted - 1, 4) if predicted else float("nan")


def parameters() -> dict[str, Any]:
    counted = count_architecture()
    return {
        name: {
            "predicted": CACHED_COUNTS[name]["total"],
            "measured": counted[name]["total"],
            "exact": CACHED_COUNTS[name] == counted[name],
        }
        for name in ("transformer", "text_encoder", "vae")
    }


def blocks() -> list[dict[str, Any]]:
    from support.calibration.blocks import build_block, measure_block

    tokens = act.TokenCounts(CHECK_TOKENS - TEXT_TOKENS, TEXT_TOKENS)
    variants = [(None, None), ("all", None), ("all+ffs", None), ("all", "int8")]
    rows = []
    for kind in ("double", "single"):
        for target, quantize in variants:
            started = time.perf_counter()
            block = build_block(kind, lora_target=target, quantize=quantize)
            m = measure_block(kind, tokens=tokens.joint, text_tokens=tokens.text, block=block)
            del block
            p = act.block_bytes(ARCH, kind, tokens, lora_target=target, quanto=bool(quantize))
            rows.append(
                {
                    "block": kind,
                    "tokens": tokens.joint,
                    "lora_target": target,
                    "quantize": quantize,
                    "saved": {
                        "predicted": int(p.saved),
                        "measured": m.saved_bytes,
                        "error": error(m.saved_bytes, p.saved),
                    },
                    "train_peak": {
                        "predicted": int(p.train_peak),
                        "measured": m.train_peak_bytes,
                        "error": error(m.train_peak_bytes, p.train_peak),
                    },
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
    return rows


def stack_prediction(tokens: act.TokenCounts, counts: dict[str, int], dtype_bytes: int = 2) -> int:
    a = act.training_activations(
        ARCH,
        tokens,
        batch=1,
        checkpointing=True,
        lora_target="all",
        rank=16,
        precision="no_change",
        dtype_bytes=dtype_bytes,
        blocks=counts,
    )
    lora_grads = 4 * sum(
        n * sum(16 * (lin.in_features + lin.out_features) for lin in ARCH.lora_modules("all", kind))
        for kind, n in counts.items()
    )
    return a.total + lora_grads


def stack() -> dict[str, Any]:
    from support.calibration.stack import build_transformer, measure_stack

    from chroma_studio.training.grad_checkpointing import enable_masked_checkpointing

    counts = {"double": 1, "single": 2}
    model = build_transformer(counts["double"], counts["single"], lora_target="all")
    enable_masked_checkpointing(model)
    m = measure_stack(counts["double"], counts["single"], image_tokens=576, text_tokens=TEXT_TOKENS, model=model)
    predicted = stack_prediction(act.TokenCounts(m.image_tokens, m.text_tokens), counts)
    return {
        "blocks": counts,
        "image_tokens": m.image_tokens,
        "text_tokens": m.text_tokens,
        "lora_target": "all",
        "train_peak": {
            "predicted": predicted,
            "measured": m.train_peak_bytes,
            "error": error(m.train_peak_bytes, predicted),
        },
    }


def vae() -> dict[str, Any]:
    from support.calibration.blocks import build_vae, measure_vae

    model = build_vae()
    rows = {}
    for decode in (False, True):
        predicted = act.vae_activations(256, decode=decode, dtype_bytes=2)
        measured = measure_vae(256, decode=decode, vae=model)
        rows["decode" if decode else "encode"] = {
            "resolution": 256,
            "predicted": predicted,
            "measured": measured,
            "error": error(measured, predicted),
        }
    return rows


def t5(batch: int = 8, tokens: int = 128) -> dict[str, Any]:
    import torch
    from support.calibration.meters import live_tensor_meter, weight_tensors
    from transformers import T5Config, T5EncoderModel

    from chroma_studio.hardware.architecture import read_model_config

    config = T5Config(**{k: v for k, v in read_model_config("text_encoder").items() if not k.startswith("_")})
    config.num_layers = 1
    with torch.device("meta"):
        model = T5EncoderModel(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.02)
    ids = torch.randint(0, config.vocab_size, (batch, tokens))
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[:, tokens // 2 :] = 0
    live = live_tensor_meter(ignore=[ids, mask, *weight_tensors(model)])
    with torch.no_grad(), live:
        out = model(input_ids=ids, attention_mask=mask)[0]
        del out
    predicted = act.t5_activations(batch=batch, tokens=tokens, dtype_bytes=2)
    return {
        "batch": batch,
        "tokens": tokens,
        "predicted": predicted,
        "measured": live.peak,
        "error": error(live.peak, predicted),
    }


def quickstart() -> dict[str, Any]:
    rows = {}
    for precision, figure in QUICKSTART_FIGURES_GB.items():
        config = TrainingConfig().replace(base_model_precision=precision, **QUICKSTART_SETTINGS)
        estimate = estimate_memory(config, "cuda", QUICKSTART_ASSUMPTIONS)
        ours = estimate_memory(config, "cuda")
        rows[precision] = {
            "figure_gb": figure,
            "predicted_gb": round(estimate.peak_device_bytes / GiB, 2),
            "phase": estimate.peak_device_phase,
            "error": error(estimate.peak_device_bytes / GiB, figure),
            "chroma_studio_engine_gb": round(ours.peak_device_bytes / GiB, 2),
        }
    return rows


def cuda() -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    from support.calibration.blocks import measure_block
    from support.calibration.stack import build_transformer, measure_stack

    from chroma_studio.training.grad_checkpointing import enable_masked_checkpointing

    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0)}
    tokens = act.TokenCounts(4096, 128)  # 1024 px with a typical caption
    for kind in ("double", "single"):
        m = measure_block(kind, tokens=tokens.joint, text_tokens=tokens.text, device="cuda")
        p = act.block_bytes(ARCH, kind, tokens)
        result[f"{kind}_block_saved"] = {
            "predicted": int(p.saved),
            "measured": m.saved_bytes,
            "error": error(m.saved_bytes, p.saved),
        }
    counts = {"double": 1, "single": 2}
    model = build_transformer(counts["double"], counts["single"], lora_target="all", device="cuda")
    enable_masked_checkpointing(model)
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    measure_stack(
        counts["double"],
        counts["single"],
        image_tokens=tokens.image,
        text_tokens=tokens.text,
        device="cuda",
        model=model,
    )
    torch.cuda.synchronize()
    allocated = torch.cuda.max_memory_allocated() - weights
    reserved = torch.cuda.max_memory_reserved() - weights
    predicted = stack_prediction(tokens, counts)
    result["stack_train_peak"] = {
        "blocks": counts,
        "tokens": tokens.joint,
        "predicted": predicted,
        "measured_allocated": allocated,
        "error": error(allocated, predicted),
        "reserved_over_allocated": round(reserved / allocated, 3),
    }
    return result


def tiers() -> dict[str, Any]:
    """What the recommendation picks for 6, 8 and 12 GB cards with 16 and 32 GB of RAM (1024 px images),
    with its predicted peaks; and the presets for those cards."""
    from chroma_studio.hardware.budget import pinned_bytes
    from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
    from chroma_studio.hardware.presets import get_preset
    from chroma_studio.hardware.recommend import recommend

    rows: dict[str, Any] = {}
    for card_gb in (6, 8, 12):
        for ram_gb in (16, 32):
            total, ram = card_gb * GiB, ram_gb * GiB
            gpu = DeviceInfo("cuda", 0, f"{card_gb} GB card", total, total - GiB // 2, compute_capability=(8, 9))
            cpu = DeviceInfo("cpu", 0, "x86_64", ram, ram * 3 // 4)
            machine = MachineInfo((gpu, cpu), ram, ram * 3 // 4, None, None, "benchmark", platform.python_version())
            r = recommend(machine, dataset_resolution=1024)
            at_1024 = estimate_memory(TrainingConfig().replace(**{**r.settings, "resolution": 1024}), gpu)
            rows[f"{card_gb}gb_card_{ram_gb}gb_ram"] = {
                "fits": r.fits,
                "settings": r.settings,
                "peak_device_gb": round(r.peak_device_bytes / GiB, 2) if r.estimate else None,
                "peak_ram_gb": round(r.peak_host_bytes / GiB, 2) if r.estimate else None,
                "streaming": r.streaming_dict(),
                "these_settings_at_1024_px_device_gb": round(at_1024.peak_device_bytes / GiB, 2),
                "reasons": r.reasons[1:],
            }
    for key in ("nvidia-6gb", "nvidia-8gb", "gpu-12gb"):
        preset = get_preset(key)
        estimate = estimate_memory(TrainingConfig().replace(**preset.settings), "cuda")
        rows[f"preset_{key}"] = {
            "settings": preset.settings,
            "peak_device_gb": round(estimate.peak_device_bytes / GiB, 2),
            "peak_device_phase": estimate.peak_device_phase,
            "peak_ram_gb": round(estimate.peak_host_bytes / GiB, 2),
            "pinned_ram_gb": round(pinned_bytes(estimate) / GiB, 2),
            "usable_gb": preset.tier.memory_gb - 0.5,
        }
    return rows


def calibrate() -> dict[str, Any]:
    from support.calibration.blocks import measure_block_coefficients

    return {kind: measure_block_coefficients(kind) for kind in ("double", "single")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="print fresh block coefficients and exit")
    parser.add_argument("--tiers", action="store_true", help="print only the small-card tiers at 1024 px and exit")
    args = parser.parse_args()
    if args.tiers:
        print(json.dumps(tiers(), indent=2))
        return 0
    import torch

    started = time.perf_counter()
    if args.calibrate:
        print(json.dumps(calibrate(), indent=2))
        return 0
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.machine()},
        "parameters": parameters(),
        "quickstart": quickstart(),
        "tiers_at_1024_px": tiers(),
        "blocks": blocks(),
        "stack": stack(),
        "vae": vae(),
        "t5_layer": t5(),
        "cuda": cuda(),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
