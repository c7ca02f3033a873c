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
    gpus = len(_data_parallel_gpus(machine))
    on_all = recommend(machine, dataset_resolution=args.resolution, processes=gpus) if gpus else None
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
            "data_parallel_gpus": gpus,
            "recommendation_all_gpus": on_all.to_dict() if on_all else None,
        }
        print(json.dumps(document, indent=2))
        return 0
    _print_machine(machine)
    print()
    _print_recommendation(recommendation, preset)
    if on_all is not None:
        _print_on_all_gpus(on_all, gpus)
    return 0


def _print_on_all_gpus(recommendation: Any, gpus: int) -> None:
    """The settings for a run on every GPU (``num_processes``): they never stream blocks from RAM."""
    print()
    print(f"On all {gpus} GPUs (num_processes {gpus})" if recommendation.fits else f"On all {gpus} GPUs: nothing fits")
    if recommendation.fits:
        for key, value in recommendation.settings.items():
            print(f"  {key}: {json.dumps(value)}")
    for reason in recommendation.reasons[1:]:
        print(f"  - {reason}")


def _print_machine(machine: Any) -> None:
    print("Machine")
    print(f"  System:  {machine.os}, Python {machine.python}")
    for device in machine.devices:
        details = device.details()
        suffix = f" ({', '.join(details)})" if details else ""
        print(f"  Device:  {device.describe()}{suffix}")
    gpus = _data_parallel_gpus(machine)
    if gpus:
        smallest = min(gpus, key=lambda d: d.total_bytes)
        sizes = (
            ""
            if len({d.total_bytes for d in gpus}) == 1
            else f"; settings must fit the smallest, {_gb(smallest.total_bytes)}"
        )
        print(f"  GPUs:    {len(gpus)} GPUs: data-parallel available (num_processes {len(gpus)}{sizes})")
    print(f"  RAM:     {_gb(machine.ram_total)}, {_gb(machine.ram_available)} available")
    print(f"  Disk:    {_gb(machine.disk_free_output)} free at {machine.output_dir}")
    print(f"           {_gb(machine.disk_free_cache)} free at the model cache {machine.cache_dir}")


def _data_parallel_gpus(machine: Any) -> list[Any]:
    """The GPUs one data-parallel run can use, one process each: CUDA or ROCm, two or more (none on
    Windows, which has no NCCL)."""
    gpus = [d for d in machine.devices if d.kind in ("cuda", "rocm")]
    return gpus if len(gpus) > 1 and not machine.os.lower().startswith("windows") else []


def _print_recommendation(recommendation: Any, preset: Any) -> None:
    if recommendation.fits:
        print("Recommended settings")
    else:
        print("No setting of the real model fits; closest option")
    for key, value in recommendation.settings.items():
        print(f"  {key}: {json.dumps(value)}")
    if preset is not None:
        print(f'  (preset for this class of machine: {preset.key}, "{preset.name}")')
    streaming = recommendation.streaming_dict()
    if streaming is not None:
        from chroma_studio.hardware.streaming import describe_slowdown

        print()
        print("Streaming frozen blocks from RAM")
        print(f"  Blocks streamed:    {streaming['blocks_streamed']} of 57 (blocks_to_swap)")
        print(f"  Pinned RAM:         {streaming['pinned_ram_gb']:.1f} GB")
        print(f"  Modelled slowdown:  {describe_slowdown(streaming)}")
    print()
    print("Why")
    for reason in recommendation.reasons:
        print(f"  - {reason}")
