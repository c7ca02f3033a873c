"""``chroma-studio doctor [--json]``: this machine, the settings that fit it, and why."""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import Any

from chroma_studio.base.units import format_bytes

_gb = partial(format_bytes, decimals=1, unknown="unknown")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show the GPU, memory and disk, and the settings that fit",
        description="Detect GPUs (NVIDIA, AMD ROCm, Apple silicon, Intel), system RAM and free disk, then recommend "
        "the best-quality training settings that fit, with the reasons.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--output-dir", metavar="DIR", help="where runs will be written (for the free-disk check)")
    parser.add_argument("--resolution", type=int, metavar="N", help="your images' resolution in pixels")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chroma_studio.config import TrainingConfig
    from chroma_studio.hardware import detect_machine, recommend
    from chroma_studio.hardware.presets import PresetError, preset_for

    output_dir = args.output_dir or TrainingConfig().run.output_dir
    machine = detect_machine(output_dir)
    recommendation = recommend(machine, dataset_resolution=args.resolution)
    device = recommendation.device
    try:
        memory = machine.ram_total if device.unified_memory else device.total_bytes
        preset = preset_for(device.kind, memory)
    except PresetError as exc:
        print(f"warning: {exc}")
        preset = None
    if args.json:
        document = {
            "machine": machine.to_dict(),
            "recommendation": recommendation.to_dict(),
            "preset": preset.key if preset else None,
        }
        print(json.dumps(document, indent=2))
        return 0
    _print_machine(machine)
    print()
    _print_recommendation(recommendation, preset)
    return 0


def _print_machine(machine: Any) -> None:
    print("Machine")
    print(f"  System:  {machine.os}, Python {machine.python}")
    for device in machine.devices:
        details = device.details()
        suffix = f" ({', '.join(details)})" if details else ""
        print(f"  Device:  {device.describe()}{suffix}")
    print(f"  RAM:     {_gb(machine.ram_total)}, {_gb(machine.ram_available)} available")
    print(f"  Disk:    {_gb(machine.disk_free_output)} free at {machine.output_dir}")
    print(f"           {_gb(machine.disk_free_cache)} free at the model cache {machine.cache_dir}")


def _print_recommendation(recommendation: Any, preset: Any) -> None:
    if recommendation.fits:
        print("Recommended settings")
    else:
        print("No setting of the real model fits; closest option")
    for key, value in recommendation.settings.items():
        print(f"  {key}: {json.dumps(value)}")
    if preset is not None:
        print(f'  (preset for this class of machine: {preset.key}, "{preset.name}")')
    print()
    print("Why")
    for reason in recommendation.reasons:
        print(f"  - {reason}")
