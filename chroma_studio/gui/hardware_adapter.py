"""Reading ``chroma_studio.hardware`` and ``chroma_studio.hardware.presets`` into the window's ``MachineSummary``.

This is the one GUI module that knows the hardware layer's records (``MachineInfo``,
``DeviceInfo``, ``Recommendation``, ``Preset``); the pages only see ``DeviceInfo`` and
``PresetOption`` from ``machine_info``, which does not import this module (the dependency goes
one way: the Studio calls ``summarize`` and ``estimate_text``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from chroma_studio.base.units import GiB, format_bytes
from chroma_studio.config import TrainingConfig
from chroma_studio.gui.machine_info import DeviceInfo, MachineSummary, PresetOption, data_parallel_gpus

logger = logging.getLogger(__name__)

_KIND_NAMES = {"cuda": "NVIDIA", "rocm": "AMD", "mps": "Mac", "xpu": "Intel"}


def summarize(output_dir: str | os.PathLike | None = None) -> MachineSummary:
    """Detect the machine, recommend settings for its best device and say which presets fit it."""
    from chroma_studio.hardware.detect import detect_machine
    from chroma_studio.hardware.recommend import recommend

    machine = detect_machine(output_dir)
    best = machine.best_device
    recommendation = recommend(machine)
    devices = sorted(machine.devices, key=lambda d: (d is not best, d.kind == "cpu", d.index))
    if recommendation.settings.get("model_flavour") == "demo":
        title, description = "The demo model", "A tiny model that trains in about a minute here; to learn the app."
    else:
        title, description = "Recommended for this machine", "The best quality that fits, with a safety margin."
    recommended = PresetOption(
        key="recommended",
        title=title,
        description=description,
        settings=dict(recommendation.settings),
        fits=recommendation.fits or recommendation.settings.get("model_flavour") == "demo",
    )
    notes = []
    if machine.disk_free_output is not None and machine.disk_free_output < 20 * GiB:
        notes.append(f"Only {format_bytes(machine.disk_free_output)} free on the disk of the output folder.")
    if machine.disk_free_cache is not None and machine.disk_free_cache < 40 * GiB:
        notes.append(
            f"Only {format_bytes(machine.disk_free_cache)} free where models are downloaded "
            f"({machine.cache_dir}); Chroma with its text encoder takes about 30 GB."
        )
    return MachineSummary(
        devices=tuple(_device_info(d) for d in devices),
        ram_total=machine.ram_total,
        ram_available=machine.ram_available,
        recommended=recommended,
        reasons=tuple(recommendation.reasons),
        presets=tuple(_preset_options(best, machine.ram_total)),
        notes=tuple(notes),
        all_gpus=_all_gpus_option(machine),
        machine=machine,
        device=best,
    )


def _all_gpus_option(machine: Any) -> PresetOption | None:
    """The recommendation for a run on all GPUs, where one run can use several; ``fits`` is False
    where no setting fits them without streaming blocks, and the description says why either way."""
    from chroma_studio.hardware.recommend import recommend

    gpus = data_parallel_gpus(machine.devices)
    if not gpus:
        return None
    on_all = recommend(machine, processes=gpus)
    return PresetOption(
        key="all-gpus",
        title=f"On all {gpus} GPUs",
        description=on_all.processes_reason,
        settings=dict(on_all.settings),
        fits=on_all.fits,
    )


def _device_info(device: Any) -> DeviceInfo:
    details = device.details()
    if device.unified_memory:
        details.append("unified memory (Metal working set)")
    name = device.name if device.kind != "cpu" else f"CPU ({device.name})"
    return DeviceInfo(name, device.kind, device.total_bytes, device.free_bytes, ", ".join(details))


def _preset_options(device: Any, ram_total: int) -> list[PresetOption]:
    """Every shipped preset; those for this kind of device first, each saying whether it fits."""
    from chroma_studio.hardware import presets

    options = []
    for preset in presets.load_presets():
        fits = preset.tier.matches_device(device, ram_total)  # a Mac by its RAM, a card by its memory
        kinds = " or ".join(_KIND_NAMES.get(k, k) for k in preset.tier.devices)
        needs = (
            f"a Mac with {preset.tier.memory_gb:g} GB"
            if preset.tier.devices == ("mps",)
            else (f"{_article(preset.tier.memory_gb)} {preset.tier.memory_gb:g} GB {kinds} card")
        )
        note = f"Fits your {_KIND_NAMES.get(device.kind, device.kind)} device" if fits else f"Needs {needs}"
        options.append(
            PresetOption(preset.key, preset.name, preset.description, dict(preset.settings), note, fits, needs)
        )
    return sorted(options, key=lambda o: (not o.fits, o.key))


def _article(number: float) -> str:
    """ "an" before a number said with a vowel sound (8, 11, 18, 80…), else "a"."""
    return "an" if f"{number:g}".startswith(("8", "11", "18")) else "a"


def estimate_text(config: TrainingConfig, summary: MachineSummary) -> str:
    """One sentence on the predicted peak memory of ``config`` on the summarised machine's device."""
    device = summary.device
    if device is None:
        return ""
    from chroma_studio.hardware.memory import estimate_memory

    estimate = estimate_memory(config, device)
    if estimate.unified_memory or device.kind == "cpu":
        text = (
            f"The current settings need about {format_bytes(estimate.peak_combined_bytes)} of memory at peak; "
            f"{format_bytes(summary.ram_available or None)} is free now."
        )
    else:
        text = (
            f"The current settings need about {format_bytes(estimate.peak_device_bytes)} of GPU memory at peak "
            f"({format_bytes(device.free_bytes)} free) and {format_bytes(estimate.peak_host_bytes)} of RAM."
        )
    return " ".join([text, *estimate.notes])
