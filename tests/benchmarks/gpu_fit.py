"""Does 1024 px fit an 8 GB and a 6 GB laptop GPU? Measured on any NVIDIA GPU, against the memory model.

    python tests/benchmarks/gpu_fit.py [--out FILE] [--only PATTERN[,PATTERN]] [--precisions int8,int4,nf4]
    python tests/benchmarks/gpu_fit.py --tiny --out FILE     # the same code on the CPU with a tiny model

Nothing is downloaded: the real Chroma transformer (19 double + 38 single blocks, width 3072) is
built on the meta device, made on the GPU with random bf16 weights and quantized once per
precision (quanto int8 and int4 through the engine's ``quantize_transformer``; NF4 with
bitsandbytes where it imports), with the engine's LoRA (rank 16, ``all``), its masked gradient
checkpointing and, where a case streams, its block streamer. T5 is skipped: the text is a random
128-token embedding, as many positions as the memory model assumes.

A smaller card is imitated in the same process: ``torch.cuda.set_per_process_memory_fraction``
caps what the caching allocator may hold at the card's usable size (7.5 GB of an 8 GB card, 5.5
GB of a 6 GB one) less the CUDA context, which this process measures once and reports
separately; before each case the cache is emptied and the peak statistics reset. Per precision
the cases run in this order: 1024 px at 8 and 6 GB with the streaming the recommendation chooses
(``recommend``; where it picks another precision, the fewest streamed blocks the memory model
says fit), 512 px at 8 and 6 GB without streaming, 1024 px at 8 and 6 GB without streaming, and
1024 px uncapped (the compute time of a step, nothing streamed). Each case trains 3 steps and
times the last 2. The host-to-device bandwidth is measured with a pinned copy, apart from the
steps, so a laptop's streaming cost can be judged from the model rather than from this card's.
JSON is written after every case (``--out``). Sized to finish within 8 minutes on one H100
(3 precisions x 7 cases x 3 steps); not yet timed on one.

``--tiny``: a tiny Chroma on the CPU through the same functions (resolutions 128 and 64 stand in
for 1024 and 512); there is no CUDA, so the caps, the context and the bandwidth are skipped and
the JSON says so. A test runs it so CI proves the script works.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from support.calibration.device_model import build_transformer, quantize  # noqa: E402

GiB = 2**30
PRECISIONS = {"int8": "int8-quanto", "int4": "int4-quanto", "nf4": "nf4-bnb"}
TEXT_TOKENS = 128
STEPS = 3  # per case; the first warms up and makes the optimizer's states


@dataclass(frozen=True)
class Case:
    name: str
    usable_gb: float | None  # None: uncapped
    resolution: int
    streaming: str  # "recommended" or "none"


CASES = (
    Case("1024-stream-8gb", 7.5, 1024, "recommended"),
    Case("1024-stream-6gb", 5.5, 1024, "recommended"),
    Case("512-8gb", 7.5, 512, "none"),
    Case("512-6gb", 5.5, 512, "none"),
    Case("1024-8gb", 7.5, 1024, "none"),
    Case("1024-6gb", 5.5, 1024, "none"),
    Case("1024-uncapped", None, 1024, "none"),
)


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def gb(value: float | None) -> float | None:
    return None if value is None else round(value / GiB, 3)


def batch(resolution: int, device: Any, text_dim: int) -> Any:
    import torch

    from chroma_studio.training.step import StepInputs

    side = resolution // 8
    generator = torch.Generator().manual_seed(0)
    mask = torch.ones(1, TEXT_TOKENS, dtype=torch.bool)
    mask[:, TEXT_TOKENS - 20 :] = False
    return StepInputs(
        latents=torch.randn(1, 16, side, side, generator=generator).to(device),
        text_embeds=torch.randn(1, TEXT_TOKENS, text_dim, generator=generator).to(device),
        text_mask=mask.to(device),
        sigmas=torch.tensor([0.5], device=device),
        noise=torch.randn(1, 16, side, side, generator=generator).to(device),
    )


# -- the memory model and the recommendation --------------------------------------------------------
def settings(precision: str, resolution: int, blocks: int) -> Any:
    from chroma_studio.config import TrainingConfig

    return TrainingConfig().replace(
        base_model_precision=precision,
        resolution=resolution,
        lora_rank=16,
        flux_lora_target="all",
        gradient_checkpointing=True,
        mixed_precision="bf16",
        blocks_to_swap=blocks,
    )


def estimate_training(precision: str, resolution: int, blocks: int) -> dict[str, Any]:
    """The memory model's training phase on CUDA: total, and without the context and the allocator's reserve."""
    from chroma_studio.hardware.memory import estimate_memory

    phase = estimate_memory(settings(precision, resolution, blocks), "cuda").phase("training")
    context = sum(p.device_bytes for p in phase.parts if p.name.startswith("runtime context"))
    reserve = sum(p.device_bytes for p in phase.parts if p.name == "allocator reserve")
    return {"device": phase.device_bytes, "context": context, "tensors": phase.device_bytes - context - reserve}


def recommended_blocks(usable_gb: float, precision: str, resolution: int) -> tuple[int, str]:
    """Blocks to stream for a card of ``usable_gb``: the recommendation's where it chose this
    precision and resolution, else the fewest the memory model says fit (57 at most)."""
    from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
    from chroma_studio.hardware.recommend import BLOCKS, recommend

    card = round(usable_gb + 0.5)
    device = DeviceInfo("cuda", 0, f"{card} GB laptop GPU", card * GiB, int(usable_gb * GiB), compute_capability=(8, 9))
    machine = MachineInfo((device,), 32 * GiB, 24 * GiB, None, None, "Linux", "3.11")
    chosen = recommend(machine, resolution).settings
    same = chosen.get("base_model_precision") == precision and chosen.get("resolution") == resolution
    if same and "blocks_to_swap" in chosen:
        return int(chosen["blocks_to_swap"]), "recommendation"
    for blocks in range(BLOCKS + 1):
        if estimate_training(precision, resolution, blocks)["device"] <= usable_gb * GiB:
            return blocks, "memory model (the recommendation chose other settings)"
    return BLOCKS, "memory model: does not fit even with every block streamed"


# -- running the cases -------------------------------------------------------------------------------
class Bench:
    """One quantized model with its LoRA and optimizer; cases change its streaming and the cap."""

    def __init__(self, precision: str, device: Any, tiny: bool) -> None:
        import torch

        from chroma_studio.training.lora import add_lora, lora_parameters

        self.precision, self.device, self.tiny = precision, device, tiny
        began = time.perf_counter()
        self.model = quantize(build_transformer(device, tiny), precision, device)
        torch.manual_seed(0)
        add_lora(self.model, 16, 16.0, "all")
        self.params = lora_parameters(self.model)
        for param in self.params:
            param.data = param.data.to(device)
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5)
        self.streamer: Any = None
        self.load_seconds = time.perf_counter() - began
        self.text_dim = self.model.config.joint_attention_dim

    def stream(self, blocks: int) -> None:
        """Stream the last ``blocks`` blocks (the engine's order: streaming, then checkpointing)."""
        from chroma_studio.training.grad_checkpointing import disable_masked_checkpointing, enable_masked_checkpointing
        from chroma_studio.training.streaming import install_streaming

        disable_masked_checkpointing(self.model)
        if self.streamer is not None:
            self.streamer.uninstall()
            for block in self.streamer.blocks:
                block.to(self.device)
            self.streamer = None
        self.streamer = install_streaming(self.model, blocks, self.device)
        enable_masked_checkpointing(self.model)

    def steps(self, resolution: int, count: int = STEPS) -> list[float]:
        import torch

        from chroma_studio.training.step import flow_matching_loss

        inputs = batch(resolution, self.device, self.text_dim)
        seconds = []
        self.model.train()
        for _ in range(count):
            began = time.perf_counter()
            loss = flow_matching_loss(self.model, inputs, dtype=torch.bfloat16)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            loss.item()
            seconds.append(time.perf_counter() - began)
        return seconds


def context_bytes() -> int:
    """Device memory the CUDA context takes: used on the card by this process beyond torch's pool."""
    import torch

    torch.cuda.init()
    torch.empty(1, device="cuda")
    free, total = torch.cuda.mem_get_info()
    return max(total - free - torch.cuda.memory_reserved(), 0)


def host_to_device_gbps(size: int = GiB, repeats: int = 5) -> dict[str, float]:
    """Pinned and pageable host-to-device copy speed, GB/s (10^9 bytes per second)."""
    import torch

    result = {}
    for kind in ("pinned", "pageable"):
        host = torch.empty(size, dtype=torch.uint8, pin_memory=kind == "pinned")
        device = torch.empty(size, dtype=torch.uint8, device="cuda")
        device.copy_(host, non_blocking=True)
        torch.cuda.synchronize()
        began = time.perf_counter()
        for _ in range(repeats):
            device.copy_(host, non_blocking=True)
        torch.cuda.synchronize()
        result[kind] = round(size * repeats / (time.perf_counter() - began) / 1e9, 2)
        del host, device
    return result


def cap(usable_gb: float | None, context: int) -> float | None:
    """Limit the caching allocator to ``usable_gb`` less the context; None lifts the limit."""
    import torch

    gc.collect()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    limit = total if usable_gb is None else usable_gb * GiB - context
    torch.cuda.set_per_process_memory_fraction(min(max(limit / total, 0.0), 1.0))
    torch.cuda.reset_peak_memory_stats()
    return None if usable_gb is None else limit


def run_case(bench: Bench, case: Case, cuda: bool, context: int) -> dict[str, Any]:
    import torch

    resolution = case.resolution if not bench.tiny else {1024: 128, 512: 64}[case.resolution]
    blocks, chosen_by = 0, "none"
    if case.streaming == "recommended":
        if bench.precision == "nf4-bnb":
            return {"skipped": "streaming does not work with nf4-bnb yet"}
        blocks, chosen_by = recommended_blocks(case.usable_gb or 0, bench.precision, case.resolution)
    if cuda:
        cap(None, context)
    bench.stream(blocks)
    row: dict[str, Any] = {"resolution": resolution, "blocks_to_swap": blocks, "blocks_chosen_by": chosen_by}
    if cuda:
        limit = cap(case.usable_gb, context)
        row["allocator_limit_gb"] = gb(limit)
    else:
        row["cap"] = "skipped: no CUDA"
    estimate = estimate_training(bench.precision, case.resolution, blocks)
    row["estimate_gb"] = {k: gb(v) for k, v in estimate.items()}
    try:
        seconds = bench.steps(resolution)
        row["fits"] = True
        row["s_per_step"] = round(sum(seconds[1:]) / len(seconds[1:]), 3)
    except torch.cuda.OutOfMemoryError:
        row["fits"] = False
        bench.optimizer.zero_grad(set_to_none=True)  # the failed step's gradients
    streamer = bench.streamer
    if streamer is not None and row["fits"]:
        row["streamed_bytes_per_step"] = streamer.bytes_copied // STEPS
        row["loads_per_block_per_step"] = sum(streamer.loads.values()) / len(streamer.blocks) / STEPS
        row["pinned"] = streamer.pin
    if cuda:
        allocated, reserved = torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()
        row["peak_allocated_gb"], row["peak_reserved_gb"] = gb(allocated), gb(reserved)
        if row["fits"]:
            row["error_allocated_vs_tensors"] = round(estimate["tensors"] / allocated - 1, 3)
            row["error_reserved_plus_context_vs_device"] = round(estimate["device"] / (reserved + context) - 1, 3)
        cap(None, context)
    gc.collect()
    return row


def selected(precision: str, case: Case, only: list[str]) -> bool:
    key = f"{precision}:{case.name}"
    return not only or any(fnmatch.fnmatch(key, pattern) or pattern in key for pattern in only)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model on the CPU: proves the script runs")
    parser.add_argument("--out", type=Path, help="JSON written here after every case")
    parser.add_argument("--only", default="", help="cases to run, e.g. 'int8:*' or 'int4:1024-stream-6gb,512'")
    parser.add_argument("--precisions", default="int8,int4,nf4")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        log("no CUDA device: run with --tiny to check the script on the CPU")
        return 2
    device = torch.device("cuda" if cuda else "cpu")
    if args.tiny:  # a tiny model gains nothing from threads; on a busy machine their barriers cost more than the work
        torch.set_num_threads(1)
    only = [p for p in args.only.split(",") if p]
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "tiny": args.tiny,
        "usable_gb": {"8 GB card": 7.5, "6 GB card": 5.5},
        "notes": [] if cuda else ["no CUDA: memory caps, context and bandwidth skipped"],
        "precisions": {},
    }
    began = time.perf_counter()

    def write() -> None:
        report["seconds"] = round(time.perf_counter() - began, 1)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))

    context = 0
    if cuda:
        context = context_bytes()
        report["context_gb"] = gb(context)
        report["host_to_device_gbps"] = host_to_device_gbps()
        write()
    for short in args.precisions.split(","):
        precision = PRECISIONS[short]
        cases = [case for case in CASES if selected(short, case, only)]
        if not cases:
            continue
        entry: dict[str, Any] = report["precisions"].setdefault(precision, {"cases": {}})
        if precision == "nf4-bnb" and not cuda:
            entry["skipped"] = "bitsandbytes NF4 needs CUDA"
            write()
            continue
        try:
            bench = Bench(precision, device, args.tiny)
        except ImportError as exc:
            entry["skipped"] = f"cannot import {exc.name}"
            write()
            continue
        entry["load_and_quantize_s"] = round(bench.load_seconds, 1)
        for case in cases:
            log(f"{precision} {case.name}")
            entry["cases"][case.name] = run_case(bench, case, cuda, context)
            write()
        del bench
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    write()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
