"""T5-XXL on the CPU against the GPU: seconds per caption, measured here and estimated there.

    python tests/benchmarks/t5_cpu.py [--tokens 64] [--batch 1] [--gpu-tflops 20] [--h2d-gbps 12]

The real T5-XXL encoder config (d_model 4096, d_ff 10240, 64 heads) with one of its 24 layers and
random weights, timed in bf16 and fp32 on this CPU with the mask on, the way the engine encodes
captions (padded to the batch's longest). Seconds per caption = one layer's time x 24 / batch: the
layers are identical, and the embedding lookup and final norm are negligible next to them.

The GPU side is estimated, not measured: the encoder's FLOPs at ``--gpu-tflops`` of sustained bf16
throughput (about what a laptop RTX 4060/4070 sustains on these matrix sizes), and, on a 6 GB card
where T5-XXL (8.9 GB in bf16) cannot stay resident and streams layer by layer
(``offload_during_startup``), its weights copied once per batch at ``--h2d-gbps``. Reading the
9.5 GB checkpoint from disk costs both sides the same and is left out. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from support.calibration.meters import fill_random_weights  # noqa: E402

from chroma_studio.hardware.architecture import read_model_config  # noqa: E402

LAYERS = 24


def one_layer_t5(dtype: Any) -> Any:
    """The real T5-XXL encoder config with one layer, random weights, in ``dtype``."""
    import torch
    from transformers import T5Config, T5EncoderModel

    config = {k: v for k, v in read_model_config("text_encoder").items() if k not in ("architectures",)}
    config.update(num_layers=1, dropout_rate=0.0)
    with torch.device("meta"):
        model = T5EncoderModel(T5Config(**config))
    model = model.to_empty(device="cpu").to(dtype)
    fill_random_weights(model, "cpu")
    return model.eval().requires_grad_(False)


def layer_flops(tokens: int, d_model: int = 4096, d_ff: int = 10240, inner: int = 4096) -> int:
    """Multiply-adds x 2 of one encoder layer per caption of ``tokens`` tokens."""
    projections = 4 * d_model * inner + 3 * d_model * d_ff  # q, k, v, o; gated FF wi_0, wi_1, wo
    attention = 2 * tokens * inner  # scores and weighted values, per token
    return 2 * tokens * (projections + attention)


def time_layer(dtype: Any, tokens: int, batch: int, repeats: int) -> float:
    """Best seconds of one no-grad pass of the one-layer encoder over ``batch`` captions."""
    import torch

    model = one_layer_t5(dtype)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 32000, (batch, tokens), generator=generator)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[1:, tokens * 3 // 4 :] = 0  # shorter captions beside the longest, as in a real batch
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            began = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="tokens of the longest caption (EOS included)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpu-tflops", type=float, default=20.0, help="assumed sustained bf16 TFLOPS of the GPU")
    parser.add_argument("--h2d-gbps", type=float, default=12.0, help="assumed host-to-device GB/s when streaming")
    args = parser.parse_args()
    import torch

    cpu: dict[str, Any] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        seconds = time_layer(dtype, args.tokens, args.batch, args.repeats)
        cpu[name] = {
            "one_layer_s": round(seconds, 3),
            "s_per_caption": round(seconds * LAYERS / args.batch, 2),
            "gflops": round(layer_flops(args.tokens) * args.batch / seconds / 1e9, 1),
        }
    flops = layer_flops(args.tokens) * LAYERS
    t5_bytes = 4_762_310_656 * 2  # the cached parameter count, bf16
    compute = flops / (args.gpu_tflops * 1e12)
    streamed = t5_bytes / (args.h2d_gbps * 1e9)
    gpu = {
        "assumed_tflops": args.gpu_tflops,
        "assumed_h2d_gbps": args.h2d_gbps,
        "resident_s_per_caption": round(compute, 4),
        "streamed_s_per_caption_batch_8": round(compute + streamed / 8, 3),
        "streamed_s_per_caption_batch_1": round(compute + streamed, 3),
    }
    best_cpu = min(v["s_per_caption"] for v in cpu.values())
    report = {
        "caption_tokens": args.tokens,
        "batch": args.batch,
        "layers_timed": 1,
        "scaled_to_layers": LAYERS,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
        "cpu": cpu,
        "gpu_estimate": gpu,
        "gflop_per_caption": round(flops / 1e9, 1),
        "cpu_faster_than_streamed_gpu": best_cpu < gpu["streamed_s_per_caption_batch_8"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
