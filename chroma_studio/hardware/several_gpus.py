"""Settings for a machine with several GPUs of one kind, in sentences.

The memory model and the recommendation are per GPU: a run is sized for the smallest of them (the
least free memory among equals), so the settings fit whichever GPU trains alone and each GPU of a
run on all of them (``num_processes``). Such a run cannot stream blocks from RAM (``validate()``
refuses ``blocks_to_swap`` with several processes: each process would pin its own copy of the
streamed blocks), so where the best setting for one GPU streams, the run on all of them takes the
best setting that fits without streaming, and says why.
"""

from __future__ import annotations

from typing import Any

from chroma_studio.base.units import format_bytes
from chroma_studio.hardware.detect import DeviceInfo, MachineInfo


def sizing_sentence(machine: MachineInfo, device: DeviceInfo) -> list[str]:
    """Which of several GPUs the settings are sized for (nothing where there is one)."""
    count = len(machine.gpus)
    if count < 2:
        return []
    which = "one" if len({d.total_bytes for d in machine.gpus}) == 1 else "the smallest"
    return [
        f"Sized for {which} of your {count} GPUs ({format_bytes(device.total_bytes)}): the settings fit whichever "
        "trains alone, and each of them in a run on all of them."
    ]


def one_gpu_sentence(
    single: dict[str, Any], precision: str, total_blocks: int, processes: int, found: bool
) -> list[str]:
    """How a run on ``processes`` GPUs differs from ``single``, the best settings for one GPU, where those
    stream: a setting that fits without streaming (``found``), or none, and then train on one GPU."""
    blocks = single.get("blocks_to_swap", 0)
    if not found:
        streams = f", streaming {blocks} of {total_blocks} blocks, with the settings below" if blocks else ""
        return [
            f"No setting fits one of these GPUs without streaming blocks from RAM, and a run on {processes} GPUs "
            f"cannot stream: train on one GPU (num_processes 1){streams}."
        ]
    if not blocks:
        return []
    return [
        f"Several GPUs need a setting that fits without streaming (each process would pin its own copy of the "
        f"streamed blocks): one GPU alone would train {precision} at {single['resolution']} px, streaming {blocks} "
        f"of {total_blocks} blocks; on all {processes} GPUs no block streams."
    ]


def per_step_sentence(batch: int, processes: int) -> str:
    images = batch * processes
    return f"On {processes} GPUs: batch {batch} on each, {images} images per step (num_processes {processes})."
