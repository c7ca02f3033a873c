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
    parser.add_argument(
        "--blocks-to-swap",
        type=int,
        metavar="N",
        help="stream the last N of the 57 transformer blocks from RAM (0-57; overrides the config's blocks_to_swap)",
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
    if args.blocks_to_swap is not None:
        if not 0 <= args.blocks_to_swap <= 57:
            print(f"error: --blocks-to-swap {args.blocks_to_swap}: choose 0 to 57 blocks.", file=sys.stderr)
            return 2
        config = config.replace(blocks_to_swap=args.blocks_to_swap)
    kind, memory, device, sized_for = _device(args)
    estimate = estimate_memory(config, device or kind)
    fits = None if memory is None else estimate.peak_device_bytes <= memory
    streaming = _streaming(config, estimate, kind, memory, device)
    if args.json:
        document = estimate.to_dict()
        document["device_memory_gb"] = None if memory is None else round(memory / GiB, 3)
        document["fits"] = fits
        document["streaming"] = streaming
        document["sized_for"] = sized_for
        print(json.dumps(document, indent=2))
        return 0
    if sized_for:
        print(f"{sized_for}\n")
    _print_estimate(estimate, memory)
    _print_streaming(streaming)
    return 0


def _streaming(config: Any, estimate: Any, kind: str, memory: int | None, device: Any) -> dict[str, Any] | None:
    """Blocks streamed, pinned RAM and the modelled slowdown (None when no block streams).

    The card's class sets the modelled compute and copy speeds: the detected card, else a card of
    ``--device-memory``, else the smallest card that holds the estimate's peak.
    """
    from chroma_studio.hardware.architecture import chroma_architecture
    from chroma_studio.hardware.budget import pinned_bytes
    from chroma_studio.hardware.streaming import step_cost

    card = memory if memory is not None else estimate.peak_device_bytes
    if device is not None:
        card = device.total_bytes
    pcie = device.pcie if device is not None else None
    cost = step_cost(config, chroma_architecture(), kind=kind, memory_bytes=card, pcie=pcie)
    if cost is None:
        return None
    return {**cost.to_dict(), "pinned_ram_gb": round(pinned_bytes(estimate) / GiB, 2)}


def _print_streaming(streaming: dict[str, Any] | None) -> None:
    if streaming is None:
        return
    from chroma_studio.hardware.streaming import describe_slowdown

    print()
    print(f"Streaming: {streaming['blocks_streamed']} of 57 blocks from RAM (blocks_to_swap)")
    print(f"  Pinned RAM:         {streaming['pinned_ram_gb']:.1f} GB")
    print(f"  Modelled slowdown:  {describe_slowdown(streaming)}")


def _device(args: argparse.Namespace) -> tuple[str, int | None, Any, str | None]:
    """(device kind, device memory in bytes or None, the detected device or None, which of several
    GPUs it is) from the flags, else from this machine: the smallest of several GPUs of one kind."""
    memory = int(args.device_memory * GiB) if args.device_memory is not None else None
    if args.device:
        return args.device, memory, None, None
    from chroma_studio.hardware import detect_machine

    machine = detect_machine()
    device = machine.sizing_device
    if memory is None and device.is_accelerator:
        memory = device.free_bytes
    count = len(machine.gpus)
    sized_for = f"Sized for the smallest of your {count} GPUs ({_gb(device.total_bytes)})." if count > 1 else None
    return device.kind, memory, device, sized_for


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
