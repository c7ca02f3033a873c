"""The best-quality settings that fit this machine, with the reasons in plain sentences.

Quality comes first in this order: training resolution (up to the dataset's, at most 1024 px),
then the base model's precision (bf16, then int8, int4, NF4 where CUDA is present), then rank 16
over 8. Memory left over goes to a larger batch (steadier gradients), then to turning gradient
checkpointing off (faster). ``offload_during_startup`` is on only where caching would not fit
otherwise.

A setting fits when every phase's predicted peak stays under what is free minus a safety margin
(10%, at least 0.5 GB): device memory on a GPU; on Apple silicon both Metal's working set and
the RAM that GPU and CPU share.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chroma_studio.base.units import format_bytes
from chroma_studio.config import TrainingConfig
from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
from chroma_studio.hardware.memory import GiB, estimate_memory
from chroma_studio.hardware.phases import MemoryEstimate

logger = logging.getLogger(__name__)

SAFETY_MARGIN = 0.10
MIN_MARGIN_BYTES = GiB // 2
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


gb = partial(format_bytes, decimals=1)  # reasons give one decimal: "needs 27.3 GB, you have 15.5 GB free"


def spendable(free: int) -> int:
    """Free bytes minus the safety margin."""
    return max(0, free - max(int(free * SAFETY_MARGIN), MIN_MARGIN_BYTES))


@dataclass(frozen=True)
class Budget:
    """What a run may use on a machine: free memory minus the safety margin."""

    device: DeviceInfo
    device_bytes: int  # the device's own memory (Metal's working set on Apple silicon)
    host_bytes: int  # free RAM
    shared: bool  # device and host draw on the same RAM (Apple silicon, CPU)

    @classmethod
    def of(cls, machine: MachineInfo, device: DeviceInfo) -> Budget:
        shared = device.unified_memory or device.kind == "cpu"
        return cls(device, spendable(device.free_bytes), spendable(machine.ram_available), shared)

    def shortfall(self, estimate: MemoryEstimate) -> int:
        """Bytes missing for ``estimate`` to fit (0 when it fits)."""
        return max(0, self.device_shortfall(estimate), self.host_shortfall(estimate))

    def device_shortfall(self, estimate: MemoryEstimate) -> int:
        return max(0, estimate.peak_device_bytes - self.device_bytes)

    def host_shortfall(self, estimate: MemoryEstimate) -> int:
        used = estimate.peak_combined_bytes if self.shared else estimate.peak_host_bytes
        return max(0, used - self.host_bytes)


@dataclass(frozen=True)
class Recommendation:
    settings: dict[str, Any]  # flat config keys
    device: DeviceInfo
    fits: bool
    estimate: MemoryEstimate | None
    reasons: list[str] = field(default_factory=list)

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
            "peak_device_gb": round(self.peak_device_bytes / GiB, 2) if self.estimate else None,
            "peak_host_gb": round(self.peak_host_bytes / GiB, 2) if self.estimate else None,
            "reasons": list(self.reasons),
        }


def target_resolution(dataset_resolution: int | None) -> int:
    """The training resolution the images call for: theirs, rounded down to 64, within 512-1024."""
    if not dataset_resolution:
        return RESOLUTIONS[0]
    return max(RESOLUTIONS[-1], min(RESOLUTIONS[0], dataset_resolution // 64 * 64))


def precisions_for(device: DeviceInfo) -> tuple[str, ...]:
    names = ("no_change", "int8-quanto", "int4-quanto")
    return (*names, "nf4-bnb") if device.supports_nf4 else names


def recommend(
    machine: MachineInfo, dataset_resolution: int | None = None, base: TrainingConfig | None = None
) -> Recommendation:
    """The best-quality settings that fit ``machine``'s best device, or what is missing."""
    device = machine.best_device
    if device.kind == "cpu":
        return _cpu_only(machine, device)
    base = (base or TrainingConfig()).replace(
        model_flavour=(base.model.model_flavour if base and base.model.model_flavour != "demo" else "base"),
        mixed_precision="bf16" if device.supports_bf16 else "fp16",
    )
    budget = Budget.of(machine, device)
    target = target_resolution(dataset_resolution)
    reasons = [f"Training on {device.describe()}."]
    found = _first_fit(base, budget, target)
    if found is None:
        return _nothing_fits(base, budget, reasons)
    config, estimate = found
    config, estimate = _use_headroom(config, estimate, budget)
    reasons += _explain(base, config, estimate, budget, target, dataset_resolution)
    settings = {key: config.to_dict()[key] for key in _CHOSEN}
    logger.info("recommended %s on %s", settings, device.describe())
    return Recommendation(settings, device, True, estimate, reasons)


_CHOSEN = (
    "model_flavour",
    "base_model_precision",
    "mixed_precision",
    "lora_rank",
    "resolution",
    "train_batch_size",
    "gradient_checkpointing",
    "offload_during_startup",
)


def _candidates(base: TrainingConfig, budget: Budget, target: int) -> Iterator[TrainingConfig]:
    for resolution in [r for r in RESOLUTIONS if r <= target]:
        for precision in precisions_for(budget.device):
            for rank in (16, 8):
                for offload in (False, True):
                    yield base.replace(
                        resolution=resolution,
                        base_model_precision=precision,
                        lora_rank=rank,
                        train_batch_size=1,
                        gradient_checkpointing=True,
                        offload_during_startup=offload,
                    )


def _first_fit(base: TrainingConfig, budget: Budget, target: int) -> tuple[TrainingConfig, MemoryEstimate] | None:
    for config in _candidates(base, budget, target):
        estimate = estimate_memory(config, budget.device)
        if budget.shortfall(estimate) == 0:
            return config, estimate
    return None


def _use_headroom(
    config: TrainingConfig, estimate: MemoryEstimate, budget: Budget
) -> tuple[TrainingConfig, MemoryEstimate]:
    """Spend memory left over: a larger batch first (steadier gradients), then checkpointing off (faster)."""
    best = (config, estimate)
    for batch in (4, 2):
        option = config.replace(train_batch_size=batch)
        candidate = estimate_memory(option, budget.device)
        if budget.shortfall(candidate) == 0:
            best = (option, candidate)
            break
    option = best[0].replace(gradient_checkpointing=False)
    candidate = estimate_memory(option, budget.device)
    if budget.shortfall(candidate) == 0:
        best = (option, candidate)
    return best


def _explain(
    base: TrainingConfig,
    config: TrainingConfig,
    estimate: MemoryEstimate,
    budget: Budget,
    target: int,
    dataset_resolution: int | None,
) -> list[str]:
    reasons = []
    chosen = config.model.base_model_precision
    order = precisions_for(budget.device)
    if chosen == order[0]:
        reasons.append(
            f"bf16, no quantization: it needs {gb(estimate.peak_device_bytes)}, "
            f"you have {gb(budget.device.free_bytes)} free."
        )
    else:
        better = order[order.index(chosen) - 1]
        needed = estimate_memory(
            config.replace(base_model_precision=better, offload_during_startup=True), budget.device
        )
        reasons.append(
            f"{PRECISION_NAMES[chosen]}: {PRECISION_NAMES[better]} needs {gb(needed.peak_device_bytes)} at "
            f"{config.data.resolution} px, you have {gb(budget.device.free_bytes)} free."
        )
    resolution = config.data.resolution
    if resolution < target:
        smallest = PRECISION_NAMES[order[-1]]
        reasons.append(f"{resolution} px: {target} px does not fit even with {smallest} on this device.")
    elif dataset_resolution:
        reasons.append(f"{resolution} px, matching your images.")
    else:
        reasons.append(f"{resolution} px, Chroma's native resolution.")
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


def _peak_sentence(estimate: MemoryEstimate) -> str:
    where = "memory" if estimate.unified_memory else "on the device"
    phase = estimate.phase(estimate.peak_device_phase).title.lower()
    return (
        f"Predicted peak: {gb(estimate.peak_device_bytes)} {where} (while {phase}), "
        f"{gb(estimate.peak_host_bytes)} of RAM."
    )


def _nothing_fits(base: TrainingConfig, budget: Budget, reasons: list[str]) -> Recommendation:
    smallest = base.replace(
        resolution=RESOLUTIONS[-1],
        base_model_precision=precisions_for(budget.device)[-1],
        lora_rank=8,
        train_batch_size=1,
        gradient_checkpointing=True,
        offload_during_startup=True,
    )
    estimate = estimate_memory(smallest, budget.device)
    name = PRECISION_NAMES[smallest.model.base_model_precision]
    device_missing, host_missing = budget.device_shortfall(estimate), budget.host_shortfall(estimate)
    if device_missing:
        reasons.append(
            f"Nothing fits: even {name} at 512 px with rank 8 needs {gb(estimate.peak_device_bytes)} on the device; "
            f"you have {gb(budget.device.free_bytes)} free ({gb(budget.device.total_bytes)} in all), "
            f"{gb(device_missing)} short with the safety margin."
        )
    if host_missing:
        needed = estimate.peak_combined_bytes if budget.shared else estimate.peak_host_bytes
        reasons.append(
            f"{'Nothing fits: ' if not device_missing else ''}it needs {gb(needed)} of RAM; "
            f"{gb(host_missing)} more free RAM is missing (close other programs)."
        )
    if budget.device.free_bytes < budget.device.total_bytes * 0.8:
        reasons.append("Other programs hold part of the device memory: closing them may be enough.")
    if not budget.device.supports_nf4:
        reasons.append("An NVIDIA GPU could use NF4 (bitsandbytes), the smallest format.")
    reasons.append("The demo flavour (model_flavour: demo) runs anywhere to try the app.")
    settings = {key: smallest.to_dict()[key] for key in _CHOSEN}
    return Recommendation(settings, budget.device, False, estimate, reasons)


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
