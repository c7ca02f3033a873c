"""``chroma-studio export RUN_DIR``: write the LoRA file of any checkpoint of a run."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the LoRA file of a run's checkpoint",
        description="Write the LoRA of a checkpoint as pytorch_lora_weights.safetensors (diffusers, ComfyUI, Forge) "
        "or in kohya layout.",
    )
    parser.add_argument("run_dir", help="the run's output folder")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument("--format", choices=("diffusers", "kohya"), default="diffusers", help="file layout")
    parser.add_argument("--output", help="where to write the file (default: inside the run folder)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chroma_studio.training.checkpoint import CheckpointError
    from chroma_studio.training.export import export_checkpoint

    try:
        path = export_checkpoint(args.run_dir, step=args.step, fmt=args.format, output=args.output)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
