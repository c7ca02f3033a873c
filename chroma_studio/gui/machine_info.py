"""What the window shows about the machine: devices, memory, the recommendation and the presets.

``MachineSummary`` is a plain record the header, the Machine & model page and the Train page
display; ``hardware_adapter.summarize()`` makes it from the hardware layer's answers (off the GUI
thread: NVML and disk queries can take a while). This module imports nothing of the hardware layer.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chroma_studio.base.units import format_bytes
from chroma_studio.config import FIELDS

logger = logging.getLogger(__name__)

DATA_PARALLEL_KINDS = ("cuda", "rocm")  # one process per GPU needs NCCL (RCCL on ROCm)


def data_parallel_gpus(devices: Iterable[Any]) -> int:
    """How many GPUs one run can train on together: two or more CUDA/ROCm GPUs, not on Windows
    (PyTorch has no NCCL there); 0 otherwise."""
    count = sum(1 for device in devices if device.kind in DATA_PARALLEL_KINDS)
    return count if count > 1 and sys.platform != "win32" else 0


# The settings a recommendation is summarised by, in this order.
_SHORT_KEYS = (
    "model_flavour",
    "base_model_precision",
    "lora_rank",
    "resolution",
    "train_batch_size",
    "blocks_to_swap",
    "num_processes",
)


@dataclass(frozen=True)
class PresetOption:
    """A named set of flat config settings the user can pick."""

    key: str
    title: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # e.g. "about 11 GB of your 12 GB" or "needs a 24 GB card"
    fits: bool | None = None
    needs: str = ""  # the hardware it is made for: "a 12 GB NVIDIA or AMD card", "a Mac with 16 GB"


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    kind: str  # cuda, rocm, mps, xpu, cpu
    total_bytes: int = 0
    free_bytes: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class MachineSummary:
    devices: tuple[DeviceInfo, ...]
    ram_total: int = 0
    ram_available: int = 0
    recommended: PresetOption | None = None
    reasons: tuple[str, ...] = ()
    presets: tuple[PresetOption, ...] = ()
    notes: tuple[str, ...] = ()
    all_gpus: PresetOption | None = None  # the settings of a run on all GPUs, where there are several
    machine: Any = field(default=None, compare=False)  # the hardware layer's own record, for estimates
    device: Any = field(default=None, compare=False)  # the device the recommendation is for

    @property
    def short_label(self) -> str:
        """How the Train button names this machine: "RTX 4070 12 GB", "Apple M2 Max 32 GB", "CPU"."""
        device = self.devices[0] if self.devices else None
        if device is None or device.kind == "cpu":
            return "CPU"
        name = device.name.replace("NVIDIA ", "").replace("GeForce ", "")
        return f"{name} {format_bytes(device.total_bytes)}" if device.total_bytes else name

    @property
    def description(self) -> str:
        """What this machine has, to follow "This machine has": "an NVIDIA GeForce RTX 4070 with 12 GB
        and 32 GB of RAM", "no supported GPU (CPU only) and 16 GB of RAM"."""
        device = self.devices[0] if self.devices else None
        ram = f"{format_bytes(self.ram_total)} of RAM" if self.ram_total else ""
        if device is None or device.kind == "cpu":
            return "no supported GPU (CPU only)" + (f" and {ram}" if ram else "")
        if device.kind == "mps":  # a Mac's GPU shares its memory
            memory = f" with {format_bytes(self.ram_total)} of unified memory" if self.ram_total else ""
            return f"{device.name}{memory}"
        memory = f" with {format_bytes(device.total_bytes)}" if device.total_bytes else ""
        return f"{device.name}{memory}" + (f" and {ram}" if ram else "")


def _format_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "mixed_precision":
        return {"no": "off (fp32)"}.get(value, str(value))
    if key == "model_flavour":
        return "demo model" if value == "demo" else f"Chroma {value}"
    if key == "base_model_precision":
        return {"no_change": "full precision", "int8-quanto": "int8", "int4-quanto": "int4", "nf4-bnb": "NF4"}.get(
            value, str(value)
        )
    if key == "lora_rank":
        return f"rank {value}"
    if key == "resolution":
        return f"{value} px"
    if key == "train_batch_size":
        return f"batch {value}"
    if key == "blocks_to_swap":
        return f"streams {value} of {FIELDS[key].maximum} blocks" if value else "no block streamed"
    if key == "num_processes":
        return f"on {value} GPUs" if value > 1 else "on one GPU"
    return str(value)


def describe_settings(settings: dict[str, Any], short: bool = False) -> str:
    """ "Chroma base · int8 · rank 16 · 1024 px · streams 52 of 57 blocks" (short; the batch, streaming
    and processes only where they are not the plain 1, none and one) or one "Label: value" per setting."""
    if short:
        skip = {"train_batch_size"} if settings.get("train_batch_size") == 1 else set()
        skip |= {"blocks_to_swap"} if not settings.get("blocks_to_swap") else set()
        skip |= {"num_processes"} if settings.get("num_processes", 1) <= 1 else set()
        if settings.get("model_flavour") == "demo":
            skip.add("base_model_precision")  # the demo model is tiny: its precision does not matter
        parts = [_format_value(k, settings[k]) for k in _SHORT_KEYS if k in settings and k not in skip]
        return " · ".join(parts) or "the default settings"
    lines = []
    for key, value in settings.items():
        label = FIELDS[key].label if key in FIELDS else key
        lines.append(f"{label}: {_format_value(key, value)}")
    return "\n".join(lines)
