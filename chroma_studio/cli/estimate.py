"""``chroma-studio estimate CONFIG``: predicted peak GPU memory and RAM of a run, phase by phase."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from typing import Any

from chroma_studio.base.units import GiB, format_bytes

DEVICE_KINDS = ("cuda", "rocm", "mps", "xpu", "cpu")
_gb = partial(format_bytes, decimals=1)  # the tables line up with one decimal everywhere


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="predict the peak GPU memory and RAM a config needs",
        description="Predict, for each phase of a run (caching, loading, training, sampling), the peak device "
        "memory and system RAM a training config needs, with a breakdown by part.",
    )
    parser.add_argument("config", metavar="CONFIG", help="a training config file (JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--device", choices=DEVICE_KINDS, help="device kind (default: this machine's best device)")
    parser.add_argument(
        "--device-memory", type=float, metavar="GB", help="check the fit against this much device memory (GB)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from chroma_studio.config import ConfigError, load_config
    from chroma_studio.hardware import estimate_memory

    try:
        config, _warnings = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kind, memory = _device(args)
    estimate = estimate_memory(config, kind)
    fits = None if memory is None else estimate.peak_device_bytes <= memory
    if args.json:
        document = estimate.to_dict()
        document["device_memory_gb"] = None if memory is None else round(memory / GiB, 3)
        document["fits"] = fits
        print(json.dumps(document, indent=2))
        return 0
    _print_estimate(estimate, memory)
    return 0


def _device(args: argparse.Namespace) -> tuple[str, int | None]:
    """(device kind, device memory in bytes or None) from the flags, else from this machine."""
    memory = int(args.device_memory * GiB) if args.device_memory is not None else None
    if args.device:
        return args.device, memory
    from chroma_studio.hardware import detect_machine

    device = detect_machine().best_device
    if memory is None and device.is_accelerator:
        memory = device.free_bytes
    return device.kind, memory


def _print_estimate(estimate: Any, memory: int | None) -> None:
    print(f"Predicted memory on {estimate.device_kind} (GB = 2^30 bytes)")
    print(f"  {'phase':<28}{'device':>10}{'RAM':>10}")
    for phase in estimate.phases:
        print(f"  {phase.title:<28}{_gb(phase.device_bytes):>10}{_gb(phase.host_bytes):>10}")
    print()
    print(f"Peak device memory: {_gb(estimate.peak_device_bytes)} ({estimate.phase(estimate.peak_device_phase).title})")
    print(f"Peak RAM:           {_gb(estimate.peak_host_bytes)} ({estimate.phase(estimate.peak_host_phase).title})")
    if memory is not None:
        spare = memory - estimate.peak_device_bytes
        if spare >= 0:
            print(f"Fits in {_gb(memory)} with {_gb(spare)} to spare.")
        else:
            print(f"Does not fit in {_gb(memory)}: {_gb(-spare)} more is needed.")
    peak = estimate.phase(estimate.peak_device_phase)
    print()
    print(f"Breakdown of the peak ({peak.title})")
    for part in sorted(peak.parts, key=lambda p: -(p.device_bytes + p.host_bytes)):
        where = [
            f"{_gb(part.device_bytes)} device" if part.device_bytes else "",
            f"{_gb(part.host_bytes)} RAM" if part.host_bytes else "",
        ]
        print(f"  {part.name:<50}{', '.join(w for w in where if w)}")
    for note in estimate.notes:
        print(f"Note: {note}")
