"""Seconds per step of one process against two (gloo, CPU) at the same global batch.

One process trains with ``train_batch_size`` = the global batch and all the cores; two processes
train with half the batch each and half the cores each (the launcher's ranks, as the app starts
them). Both runs share one embedding cache, filled by a first short run, so only the steps are
timed. Prints JSON: the median step seconds of each (the first ``WARMUP`` steps left out), the
speed-up, and the wall time of each run including the start of its processes. Also one process
with a single thread, and the load average: on a machine busy with other work, a process whose
threads outnumber the free cores slows down far more than the sum of its threads would.

Usage: python tests/benchmarks/distributed_cpu.py [--model demo|midsize] [--steps N] [--batch B]
       [--resolution PX]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from midsize import build_midsize_pipeline, demo_images, log

WARMUP = 2


def _config(root: Path, data: Path, name: str, args: argparse.Namespace, model: Path | None, processes: int):
    from chroma_studio.config import config_from_dict

    values = {
        "model_flavour": "demo",
        "mixed_precision": "no",
        "resolution": args.resolution,
        "lora_rank": 16,
        "learning_rate": 1e-4,
        "max_train_steps": args.steps,
        "checkpointing_steps": 0,
        "validation_steps": 0,
        "validation_prompt": [],
        "seed": 1,
        "dataset_dirs": [str(data)],
        "output_dir": str(root / name),
        "cache_dir": str(root / "cache"),
        "train_batch_size": args.batch // processes,
        "num_processes": processes,
    }
    if model is not None:
        values.update(model_flavour="base", pretrained_model_name_or_path=str(model))
    return config_from_dict(values)


def _median_step(run: Path) -> float:
    from chroma_studio.base.run_folder import read_jsonl

    seconds = [record["seconds"] for record in read_jsonl(run / "metrics.jsonl")]
    return statistics.median(seconds[WARMUP:] or seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("demo", "midsize"), default="demo")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4, help="the global batch (even)")
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()
    if args.batch % 2:
        parser.error("--batch must be even: two processes take half each")

    import torch

    from chroma_studio.protocol.jobs import TrainJob
    from chroma_studio.protocol.remote import RemoteControl, run_in_process
    from chroma_studio.training.trainer import run_training

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = demo_images(root / "data")
        model = build_midsize_pipeline(root / "model") if args.model == "midsize" else None
        log("filling the cache")
        warm = _config(root, data, "warm", args, model, 1).replace(max_train_steps=1)
        assert run_training(warm).status == "finished"
        results = {}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        threads = torch.get_num_threads()
        for processes in (1, 2, 0):  # 0: one process with one thread
            config = _config(root, data, f"p{processes}", args, model, max(1, processes))
            log(f"{processes} process(es), batch {config.optim.train_batch_size} each")
            began = time.perf_counter()
            if processes < 2:
                torch.set_num_threads(threads if processes else 1)
                result = run_training(config)
                torch.set_num_threads(threads)
            else:
                result = run_in_process(TrainJob(config.to_dict()), lambda event: None, RemoteControl())
            wall = time.perf_counter() - began
            assert result is not None and result.status == "finished", result
            results[processes] = (_median_step(Path(config.run.output_dir)), wall)
    one, two = results[1][0], results[2][0]
    print(
        json.dumps(
            {
                "model": args.model,
                "resolution": args.resolution,
                "global_batch": args.batch,
                "steps": args.steps,
                "cpu_cores": os.cpu_count(),
                "load_average_at_start": load,
                "one_process_threads": threads,
                "one_process_s_per_step": round(one, 4),
                "two_processes_s_per_step": round(two, 4),
                "speedup": round(one / two, 3),
                "one_process_one_thread_s_per_step": round(results[0][0], 4),
                "one_process_wall_s": round(results[1][1], 1),
                "two_processes_wall_s": round(results[2][1], 1),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
