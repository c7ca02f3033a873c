"""The best-quality settings that fit this machine, with the reasons in plain sentences.

Quality comes first in this order: training resolution (up to the dataset's, at most 1024 px),
then the base model's precision (bf16, then int8, int4, NF4 where CUDA is present), then rank 16
over 8. Memory left over goes to a larger batch (steadier gradients), then to turning gradient
checkpointing off (faster). ``offload_during_startup`` is on only where caching would not fit
otherwise.

Where a setting does not fit the card, the frozen blocks may stream from RAM (``blocks_to_swap``,
CUDA and ROCm; not NF4): the fewest blocks that make it fit. Streaming more blocks keeps a better
precision at the cost of time, so the choice between the two is made by the modelled slowdown
(``streaming.py``): a better precision is taken while its step is at most ``SLOWDOWN_LIMIT``
slower; beyond that the lower precision that streams less. The streamed blocks' pinned copies must
fit the free RAM with everything else the run holds there, and at most half the machine's RAM.

A setting fits when every phase's predicted peak stays under what is free minus a safety margin
(``budget.py``); the search for it is ``fitting.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from chroma_studio.base.units import format_bytes
from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import fitting, several_gpus
from chroma_studio.hardware.architecture import chroma_architecture
from chroma_studio.hardware.budget import (
    MIN_MARGIN_BYTES,
    PINNED_RAM_FRACTION,
    SAFETY_MARGIN,
    Budget,
    pinned_bytes,
    spendable,
)
from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
from chroma_studio.hardware.fitting import SLOWDOWN_LIMIT, Fit, PassedOver, cost_of, search, use_headroom
from chroma_studio.hardware.memory import GiB, estimate_memory
from chroma_studio.hardware.phases import MemoryEstimate
from chroma_studio.hardware.streaming import StreamingCost

logger = logging.getLogger(__name__)

RESOLUTIONS = (1024, 768, 512)
PRECISION_NAMES = {"no_change": "bf16", "int8-quanto": "int8", "int4-quanto": "int4", "nf4-bnb": "NF4"}
DEMO_STEPS = 100  # what "trains in about a minute" holds to on a CPU (resources/configs/demo.json alike)
DEMO_SETTINGS: dict[str, Any] = {
    "model_flavour": "demo",
    "max_train_steps": DEMO_STEPS,
    "resolution": 256,
    "base_model_precision": "no_change",
    "mixed_precision": "no",
    "train_batch_size": 1,
    "gradient_checkpointing": False,
    "offload_during_startup": False,
}
RAM_SIZES_GB = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)  # what machines come with, for RAM advice
BLOCKS = chroma_architecture().double_blocks + chroma_architecture().single_blocks


gb = partial(format_bytes, decimals=1)  # reasons give one decimal: "needs 27.3 GB, you have 15.5 GB free"


@dataclass(frozen=True)
class Recommendation:
    settings: dict[str, Any]  # flat config keys
    device: DeviceInfo
    fits: bool
    estimate: MemoryEstimate | None
    reasons: list[str] = field(default_factory=list)
    streaming: StreamingCost | None = None  # the modelled cost of the blocks it streams
    processes_reason: str = ""  # why a run on several GPUs takes these settings, in a sentence ("" for one)

    @property
    def peak_device_bytes(self) -> int | None:
        return self.estimate.peak_device_bytes if self.estimate else None

    @property
    def peak_host_bytes(self) -> int | None:
        return self.estimate.peak_host_bytes if self.estimate else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device.describe(),
            "device_kind": self.device.kind,
            "fits": self.fits,
            "settings": dict(self.settings),
            "peak_device_gb": round(self.estimate.peak_device_bytes / GiB, 2) if self.estimate else None,
            "peak_host_gb": round(self.estimate.peak_host_bytes / GiB, 2) if self.estimate else None,
            "reasons": list(self.reasons),
            "streaming": self.streaming_dict(),
        }

    def streaming_dict(self) -> dict[str, Any] | None:
        """Blocks streamed, pinned RAM and the modelled slowdown; None when nothing streams."""
        if self.streaming is None or self.estimate is None:
            return None
        return {**self.streaming.to_dict(), "pinned_ram_gb": round(pinned_bytes(self.estimate) / GiB, 2)}


def target_resolution(dataset_resolution: int | None) -> int:
    """The training resolution the images call for: theirs, rounded down to 64, within 512-1024."""
    if not dataset_resolution:
        return RESOLUTIONS[0]
    return max(RESOLUTIONS[-1], min(RESOLUTIONS[0], dataset_resolution // 64 * 64))


def precisions_for(device: DeviceInfo) -> tuple[str, ...]:
    names = ("no_change", "int8-quanto", "int4-quanto")
    return (*names, "nf4-bnb") if device.supports_nf4 else names


def recommend(
    machine: MachineInfo,
    dataset_resolution: int | None = None,
    base: TrainingConfig | None = None,
    processes: int = 1,
) -> Recommendation:
    """The best-quality settings that fit ``machine``'s GPU (the smallest where it has several of one
    kind), or what is missing. With ``processes`` > 1 (one per GPU, ``num_processes``) only settings
    that fit without streaming: a run of several processes cannot stream blocks (``validate()``)."""
    device = machine.sizing_device
    if device.kind == "cpu":
        return _cpu_only(machine, device)
    base = (base or TrainingConfig()).replace(
        model_flavour=(base.model.model_flavour if base and base.model.model_flavour != "demo" else "base"),
        mixed_precision="bf16" if device.supports_bf16 else "fp16",
        blocks_to_swap=0,
        num_processes=processes,
    )
    budget = Budget.of(machine, device)
    target = target_resolution(dataset_resolution)
    reasons = [f"Training on {device.describe()}.", *several_gpus.sizing_sentence(machine, device)]
    found, passed = search(_candidates(base, budget, target), budget)
    differs: list[str] = []  # how a run on several GPUs differs from one GPU alone
    if processes > 1:  # several processes cannot stream: say what streaming would have given one GPU
        single = recommend(machine, dataset_resolution, base.replace(num_processes=1))
        name = PRECISION_NAMES[single.settings["base_model_precision"]]
        differs = several_gpus.one_gpu_sentence(single.settings, name, BLOCKS, processes, found is not None)
        reasons += differs
        if found is None:
            return replace(single, fits=False, reasons=reasons, processes_reason=differs[0])
    if found is None:
        return _nothing_fits(base, budget, reasons, passed)
    found = use_headroom(found, budget)
    reasons += _explain(found, budget, target, dataset_resolution, passed)
    settings = {key: found.config.to_dict()[key] for key in _CHOSEN}
    processes_reason = ""
    if processes > 1:
        settings["num_processes"] = processes
        reasons.append(several_gpus.per_step_sentence(settings["train_batch_size"], processes))
        processes_reason = (differs or reasons[-1:])[0]  # what streaming would have given one GPU, else the step
    logger.info("recommended %s on %s", settings, device.describe())
    return Recommendation(settings, device, True, found.estimate, reasons, found.cost, processes_reason)


_CHOSEN = (
    "model_flavour",
    "base_model_precision",
    "mixed_precision",
    "lora_rank",
    "resolution",
    "train_batch_size",
    "gradient_checkpointing",
    "blocks_to_swap",
    "offload_during_startup",
)


def _candidates(base: TrainingConfig, budget: Budget, target: int) -> Iterator[list[TrainingConfig]]:
    """One group per resolution, best first; in each, precisions best first, then rank, then offload."""
    for resolution in [r for r in RESOLUTIONS if r <= target]:
        yield [
            base.replace(
                resolution=resolution,
                base_model_precision=precision,
                lora_rank=rank,
                train_batch_size=1,
                gradient_checkpointing=True,
                offload_during_startup=offload,
            )
            for precision in precisions_for(budget.device)
            for rank in (16, 8)
            for offload in (False, True)
        ]


def _explain(
    fit: Fit, budget: Budget, target: int, dataset_resolution: int | None, passed: list[PassedOver]
) -> list[str]:
    config, estimate = fit.config, fit.estimate
    reasons = [_precision_sentence(fit, budget, passed)]
    resolution = config.data.resolution
    if resolution < target:
        reasons.append(_resolution_sentence(fit, budget, target, passed))
    elif dataset_resolution:
        reasons.append(f"{resolution} px, matching your images.")
    else:
        reasons.append(f"{resolution} px, Chroma's native resolution.")
    if fit.cost is not None:
        reasons.append(streaming_sentence(fit.cost, estimate))
    if config.lora.lora_rank < 16:
        reasons.append("Rank 8: rank 16 does not fit; rank 8 still learns a character or a style well.")
    if config.model.offload_during_startup:
        reasons.append(
            "offload_during_startup on: T5-XXL would not fit on the device while caching captions, "
            "so it streams there layer by layer."
        )
    if not config.model.gradient_checkpointing:
        reasons.append("Gradient checkpointing off: there is room to keep activations, which trains ~30% faster.")
    if config.optim.train_batch_size > 1:
        reasons.append(
            f"Batch {config.optim.train_batch_size}: the memory left over fits more images per step, "
            "for steadier gradients."
        )
    reasons.append(_peak_sentence(estimate))
    return reasons


def _resolution_sentence(fit: Fit, budget: Budget, target: int, passed: list[PassedOver]) -> str:
    """Why the resolution is below the target: the device, or the RAM the streamed blocks need there."""
    resolution = fit.config.data.resolution
    ram_limited = [p for p in passed if p.why == "ram" and p.fit.config.data.resolution == target]
    if ram_limited:
        return f"{resolution} px: {ram_advice(ram_limited[-1].fit, budget)}"
    smallest = PRECISION_NAMES[precisions_for(budget.device)[-1]]
    streams = (
        " or with every block streamed from RAM" if fitting.streams(fit.config, budget.device.kind, "no_change") else ""
    )
    least = estimate_memory(_smallest(fit.config, budget, target), budget.device)
    start = f"{resolution} px: {target} px does not fit this device even with {smallest}{streams}"
    need, free, what = least.peak_device_bytes, budget.device.free_bytes, ""
    if budget.device_shortfall(least) == 0:  # the RAM (shared on a Mac) is what is short
        need, free, what = budget.host_need(least), budget.ram_free, " of RAM"
    margin = "within the safety margin of" if need <= free else "over"
    sentence = f"{start}: it needs {gb(need)}{what} at least, {margin} your {gb(free)} free."
    if what or spendable(budget.device.total_bytes) < need:
        return sentence  # even the whole card would not do
    return f"{sentence} {_how_to_reach(fit.config, budget, target, need)}"


def _how_to_reach(config: TrainingConfig, budget: Budget, target: int, need: int) -> str:
    """What gives ``target`` px on a card that would take it if other programs left it: the free memory
    it needs (rounded up to the 0.1 GB shown), and rank 4 where the model puts it inside the margin."""
    free_needed = -(-max(need / (1 - SAFETY_MARGIN), need + MIN_MARGIN_BYTES) // (GiB // 10)) * (GiB // 10)
    advice = f"{target} px needs {gb(free_needed)} free ({gb(need)} and the safety margin): close programs using "
    advice += "the GPU, or run the desktop on the integrated GPU."
    estimate = estimate_memory(_smallest(config, budget, target).replace(lora_rank=4), budget.device)
    if budget.shortfall(estimate) == 0:
        spare = gb(budget.device_bytes - estimate.peak_device_bytes, decimals=2)
        advice += f" Or set lora_rank 4: {target} px then fits ({gb(estimate.peak_device_bytes)}, {spare} inside the "
        advice += "margin), with a quarter of rank 16's capacity."
    return advice


def _precision_sentence(fit: Fit, budget: Budget, passed: list[PassedOver]) -> str:
    config, estimate = fit.config, fit.estimate
    chosen = config.model.base_model_precision
    order = precisions_for(budget.device)
    free = gb(budget.device.free_bytes)
    if chosen == order[0]:
        return f"bf16, no quantization: it needs {gb(estimate.peak_device_bytes)}, you have {free} free."
    better = order[order.index(chosen) - 1]
    name, better_name = PRECISION_NAMES[chosen], PRECISION_NAMES[better]
    resolution = config.data.resolution
    skipped = [
        p
        for p in passed
        if p.fit.config.model.base_model_precision == better and p.fit.config.data.resolution == resolution
    ]
    if skipped and skipped[0].why == "ram":
        return f"{name}: {ram_advice(skipped[0].fit, budget)}"
    if skipped:
        cost = skipped[0].fit.cost
        slower = f"about {cost.slowdown:.0%} slower" if cost else "slower"
        return (
            f"{name}: {better_name} would stream {skipped[0].fit.blocks} of {BLOCKS} blocks from RAM, {slower}: "
            f"more than the {SLOWDOWN_LIMIT:.0%} a better precision is worth."
        )
    all_blocks = BLOCKS if fitting.streams(config, budget.device.kind, better) else 0
    needed = estimate_memory(
        config.replace(base_model_precision=better, offload_during_startup=True, blocks_to_swap=all_blocks),
        budget.device,
    )
    streamed = f" even with all {BLOCKS} blocks streamed from RAM" if all_blocks else ""
    need = gb(needed.peak_device_bytes)
    return f"{name}: {better_name} needs {need} at {resolution} px{streamed}, you have {free} free."


def streaming_sentence(cost: StreamingCost, estimate: MemoryEstimate) -> str:
    """One sentence: "Streams 24 of 57 blocks from RAM: about 25% slower, fits 7.4 GB (...)"."""
    if cost.slowdown < 0.01:
        slower = "under 1% slower, as each copy hides behind the block before it"
    else:
        slower = f"about {cost.slowdown:.0%} slower"
    return (
        f"Streams {cost.blocks} of {BLOCKS} blocks from RAM: {slower}, fits {gb(estimate.peak_device_bytes)} "
        f"({gb(pinned_bytes(estimate))} of pinned RAM; copies at {cost.bandwidth / 1e9:.0f} GB/s)."
    )


def ram_advice(fit: Fit, budget: Budget) -> str:
    """What RAM a streaming option needs and what to change, for one that does not fit the RAM."""
    config = fit.config
    name = PRECISION_NAMES[config.model.base_model_precision]
    pinned = pinned_bytes(fit.estimate)
    need = budget.host_need(fit.estimate)
    if budget.pinned_excess(fit.estimate):
        short = f"more than half of this machine's {gb(budget.ram_total)} of RAM, the most that is pinned"
        needed = next((size for size in RAM_SIZES_GB if size * GiB * PINNED_RAM_FRACTION >= pinned), RAM_SIZES_GB[-1])
        change = f"it needs a machine with {needed} GB of RAM or more"
    else:
        short = f"{gb(need)} of RAM in all while only {gb(budget.host_bytes)} is free to use"
        change = "close other programs (browsers, games) or add RAM"

    return (
        f"{name} at {config.data.resolution} px would stream {fit.blocks} of {BLOCKS} blocks from RAM, keeping "
        f"{gb(pinned)} pinned there: {short}. To train in {name}, {change}."
    )


def _peak_sentence(estimate: MemoryEstimate) -> str:
    where = "memory" if estimate.unified_memory else "on the device"
    phase = estimate.phase(estimate.peak_device_phase).title.lower()
    return (
        f"Predicted peak: {gb(estimate.peak_device_bytes)} {where} (while {phase}), "
        f"{gb(estimate.peak_host_bytes)} of RAM."
    )


def _smallest(base: TrainingConfig, budget: Budget, resolution: int = RESOLUTIONS[-1]) -> TrainingConfig:
    """The setting that needs the least device memory at ``resolution``: rank 8, the smallest format or
    every block streamed."""
    options = [precisions_for(budget.device)[-1]]
    options += [p for p in ("int8-quanto", "int4-quanto") if fitting.streams(base, budget.device.kind, p)]
    configs = [
        base.replace(
            resolution=resolution,
            base_model_precision=precision,
            lora_rank=8,
            train_batch_size=1,
            gradient_checkpointing=True,
            offload_during_startup=True,
            blocks_to_swap=BLOCKS if fitting.streams(base, budget.device.kind, precision) else 0,
        )
        for precision in options
    ]
    return min(configs, key=lambda c: estimate_memory(c, budget.device).peak_device_bytes)


def _nothing_fits(base: TrainingConfig, budget: Budget, reasons: list[str], passed: list[PassedOver]) -> Recommendation:
    smallest = _smallest(base, budget)
    estimate = estimate_memory(smallest, budget.device)
    name = PRECISION_NAMES[smallest.model.base_model_precision]
    streamed = f" and all {BLOCKS} blocks streamed from RAM" if smallest.model.blocks_to_swap else ""
    device_missing, host_missing = budget.device_shortfall(estimate), budget.ram_short(estimate)
    ram_limited = [p for p in passed if p.why == "ram"]
    if device_missing:
        reasons.append(
            f"Nothing fits: even {name} at 512 px with rank 8{streamed} needs {gb(estimate.peak_device_bytes)} on the "
            f"device; you have {gb(budget.device.free_bytes)} free ({gb(budget.device.total_bytes)} in all), "
            f"{gb(device_missing)} short with the safety margin."
        )
    elif ram_limited:  # the device would take it with streaming: offer the option that needs the least RAM
        least = min(ram_limited, key=lambda p: pinned_bytes(p.fit.estimate)).fit
        smallest, estimate = least.config, least.estimate
        reasons.append(f"Nothing fits this machine's RAM: {ram_advice(least, budget)}")
    elif host_missing:
        reasons.append(
            f"Nothing fits: it needs {gb(budget.host_need(estimate))} of RAM; "
            f"{gb(budget.host_shortfall(estimate))} more free RAM is missing (close other programs)."
        )
    if budget.device.free_bytes < budget.device.total_bytes * 0.8:
        reasons.append("Other programs hold part of the device memory: closing them may be enough.")
    if not budget.device.supports_nf4:
        reasons.append("An NVIDIA GPU could use NF4 (bitsandbytes), the smallest format.")
    reasons.append("The demo flavour (model_flavour: demo) runs anywhere to try the app.")
    settings = {key: smallest.to_dict()[key] for key in _CHOSEN}
    return Recommendation(settings, budget.device, False, estimate, reasons, cost_of(smallest, budget.device))


def _cpu_only(machine: MachineInfo, device: DeviceInfo) -> Recommendation:
    real = estimate_memory(TrainingConfig().replace(base_model_precision="int8-quanto", resolution=512), device)
    reasons = [
        "No GPU found (no NVIDIA, AMD ROCm, Apple silicon or Intel GPU).",
        "Training the real 8.9B-parameter Chroma on a CPU is not practical: each step takes minutes, so a LoRA "
        f"would take days, and it needs about {gb(real.peak_combined_bytes)} of RAM even quantized to int8 "
        f"(this machine has {gb(machine.ram_total)}).",
        "The demo flavour (model_flavour: demo) trains a tiny random model in about a minute, to learn the app; "
        "its samples are noise.",
    ]
    estimate = estimate_memory(TrainingConfig().replace(**DEMO_SETTINGS), device)
    return Recommendation(dict(DEMO_SETTINGS), device, False, estimate, reasons)
