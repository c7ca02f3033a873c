"""Named presets: starting settings for a class of machine, kept as JSON in ``resources/presets``.

Each file holds a ``name``, a ``description``, the ``tier`` it targets (device kinds and memory:
a card's VRAM, or a Mac's unified memory) and ``settings``, a subset of the flat config keys.
Applying a preset returns a new config with those keys changed. The memory model checks that
every preset fits its tier (tests/hardware/test_presets.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chroma_studio.base.paths import resources_dir
from chroma_studio.config import ConfigError, TrainingConfig, config_from_dict

logger = logging.getLogger(__name__)

GiB = 2**30
DEVICE_KINDS = ("cuda", "rocm", "mps", "xpu", "cpu")


class PresetError(ValueError):
    """A preset file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Tier:
    devices: tuple[str, ...]  # device kinds: "cuda", "rocm", "mps", "xpu"
    memory_gb: float  # VRAM of the card, or unified memory of the Mac

    def matches(self, kind: str, memory_bytes: int) -> bool:
        """``memory_bytes``: the card's memory, or a Mac's RAM (not its Metal working set)."""
        # A "24 GB" card reports a little less than 24 GiB, so allow 5% below the nominal size.
        return kind in self.devices and memory_bytes >= self.memory_gb * GiB * 0.95

    def matches_device(self, device: Any, ram_total: int) -> bool:
        """For a detected DeviceInfo: Macs are matched by their RAM, cards by their own memory."""
        memory = ram_total if getattr(device, "unified_memory", False) else device.total_bytes
        return self.matches(device.kind, memory)


@dataclass(frozen=True)
class Preset:
    key: str  # the file's stem, e.g. "gpu-24gb"
    name: str
    description: str
    tier: Tier
    settings: dict[str, Any]

    def apply(self, config: TrainingConfig) -> TrainingConfig:
        return apply_preset(config, self)


def presets_dir() -> Path:
    return resources_dir() / "presets"


def load_preset(path: str | Path) -> Preset:
    """Read and check one preset file; raises PresetError naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{path}: cannot be read ({exc}).") from None
    except json.JSONDecodeError as exc:
        raise PresetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    missing = [key for key in ("name", "description", "tier", "settings") if key not in data]
    if missing:
        raise PresetError(f"{path}: missing {', '.join(missing)}.")
    tier, settings = data["tier"], data["settings"]
    if not isinstance(settings, dict) or not settings:
        raise PresetError(f"{path}: settings must be an object of config keys.")
    try:
        devices = tuple(tier["devices"])
        memory_gb = float(tier["memory_gb"])
    except (KeyError, TypeError, ValueError):
        raise PresetError(f"{path}: tier needs devices (a list) and memory_gb (a number).") from None
    unknown = [d for d in devices if d not in DEVICE_KINDS]
    if unknown:
        raise PresetError(f"{path}: unknown device kind {unknown[0]!r}; use {', '.join(DEVICE_KINDS)}.")
    try:
        config_from_dict(dict(settings), str(path))
    except ConfigError as exc:
        raise PresetError(f"{path}: {exc}") from None
    return Preset(path.stem, str(data["name"]), str(data["description"]), Tier(devices, memory_gb), dict(settings))


def load_presets(folder: str | Path | None = None) -> list[Preset]:
    """Every preset in ``folder`` (default: the shipped ones), smallest tier first."""
    folder = Path(folder) if folder is not None else presets_dir()
    presets = [load_preset(path) for path in sorted(folder.glob("*.json"))]
    return sorted(presets, key=lambda p: (p.tier.devices, p.tier.memory_gb))


def get_preset(key: str, folder: str | Path | None = None) -> Preset:
    presets = {p.key: p for p in load_presets(folder)}
    if key not in presets:
        raise PresetError(f"no preset named {key!r}; choose one of {', '.join(sorted(presets))}.")
    return presets[key]


def apply_preset(config: TrainingConfig, preset: Preset) -> TrainingConfig:
    """A copy of ``config`` with the preset's settings; everything else is kept."""
    logger.info("applying preset %s", preset.key)
    return config.replace(**preset.settings)


def preset_for(kind: str, memory_bytes: int, folder: str | Path | None = None) -> Preset | None:
    """The preset for the largest tier this device reaches, or None when none does."""
    fitting = [p for p in load_presets(folder) if p.tier.matches(kind, memory_bytes)]
    return max(fitting, key=lambda p: p.tier.memory_gb) if fitting else None
