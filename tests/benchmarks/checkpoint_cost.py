"""What a checkpoint and a sample pass cost next to a training step, to choose the intervals.

Runs our trainer on the mid-size Chroma (CPU, fp32, 256 px, rank 16, batch 1) with a checkpoint
and a sample (one prompt, 20 steps, 256 px, guidance 1) after every step. Prints JSON: seconds
and bytes of each, and each as a multiple of a training step.

Usage: python tests/benchmarks/checkpoint_cost.py [--steps N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from midsize import build_midsize_pipeline, demo_images, log


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    from chroma_studio.config import config_from_dict
    from chroma_studio.protocol import events as ev
    from chroma_studio.training.trainer import run_training

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_midsize_pipeline(root / "model")
        out = root / "run"
        config = config_from_dict(
            {
                "model_flavour": "base",
                "pretrained_model_name_or_path": str(model_dir),
                "dataset_dirs": [str(demo_images(root / "data"))],
                "output_dir": str(out),
                "cache_dir": str(root / "c"),
                "resolution": 256,
                "mixed_precision": "no",
                "gradient_checkpointing": False,
                "lora_rank": 16,
                "max_train_steps": args.steps,
                "checkpointing_steps": 1,
                "checkpoints_total_limit": 100,
                "validation_steps": 1,
                "validation_num_inference_steps": 20,
                "validation_prompt": ["a photo of a cat"],
            }
        )
        steps, saves, samples = [], [], []
        began: dict[str, float] = {}

        def sink(event):
            now = time.perf_counter()
            if isinstance(event, ev.StepLogged):
                steps.append(event.seconds)
            elif isinstance(event, ev.PhaseChanged) and event.phase in ("saving", "sampling"):
                began[event.phase] = now
            elif isinstance(event, ev.CheckpointSaved):
                saves.append((now - began["saving"], folder_bytes(Path(event.path))))
            elif isinstance(event, ev.SampleReady):
                samples.append((now - began["sampling"], Path(event.path).stat().st_size))

        log("training with a checkpoint and a sample after every step...")
        result = run_training(config, sink)
        assert result.status == "finished", result.failure
        lora_bytes = (out / "pytorch_lora_weights.safetensors").stat().st_size

    step = statistics.median(steps[1:] or steps)
    save_s = statistics.median(s for s, _ in saves)
    sample_s = statistics.median(s for s, _ in samples)
    print(
        json.dumps(
            {
                "model": "mid-size Chroma: width 768, 4 double + 8 single blocks, 256 px, rank 16 (all), fp32, CPU",
                "step_seconds": round(step, 4),
                "checkpoint": {
                    "seconds": round(save_s, 4),
                    "bytes": saves[-1][1],
                    "steps_worth": round(save_s / step, 3),
                },
                "sample_pass": {
                    "seconds": round(sample_s, 3),
                    "png_bytes": samples[-1][1],
                    "inference_steps": 20,
                    "steps_worth": round(sample_s / step, 2),
                },
                "final_lora_bytes": lora_bytes,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
