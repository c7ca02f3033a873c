"""What the memory model returns: parts, phases and the whole estimate, with a JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GiB = 2**30
PINNED_PART = "streamed blocks in pinned RAM"  # the part that holds the streamed blocks' pinned copies
PHASES = ("caching_text", "caching_images", "loading", "training", "sampling")
PHASE_TITLES = {
    "caching_text": "Caching text (T5-XXL)",
    "caching_images": "Caching images (VAE)",
    "loading": "Loading and quantizing",
    "training": "Training",
    "sampling": "Sampling",
}


@dataclass(frozen=True)
class Part:
    name: str
    device_bytes: int = 0
    host_bytes: int = 0


@dataclass(frozen=True)
class PhaseEstimate:
    name: str
    parts: tuple[Part, ...]

    @property
    def title(self) -> str:
        return PHASE_TITLES[self.name]

    @property
    def device_bytes(self) -> int:
        return sum(p.device_bytes for p in self.parts)

    @property
    def host_bytes(self) -> int:
        return sum(p.host_bytes for p in self.parts)


@dataclass(frozen=True)
class MemoryEstimate:
    device_kind: str
    unified_memory: bool
    phases: tuple[PhaseEstimate, ...]
    assumptions: Any  # memory.Assumptions
    notes: tuple[str, ...] = field(default=())

    def phase(self, name: str) -> PhaseEstimate:
        return next(p for p in self.phases if p.name == name)

    @property
    def peak_device_bytes(self) -> int:
        return max(p.device_bytes for p in self.phases)

    @property
    def peak_host_bytes(self) -> int:
        return max(p.host_bytes for p in self.phases)

    @property
    def peak_combined_bytes(self) -> int:
        """Device and host together at the worst phase: what unified memory (and a CPU run) must hold."""
        return max(p.device_bytes + p.host_bytes for p in self.phases)

    @property
    def peak_device_phase(self) -> str:
        return max(self.phases, key=lambda p: p.device_bytes).name

    @property
    def peak_host_phase(self) -> str:
        return max(self.phases, key=lambda p: p.host_bytes).name

    def to_dict(self) -> dict[str, Any]:
        def gb(value: int) -> float:
            return round(value / GiB, 3)

        return {
            "device": self.device_kind,
            "unified_memory": self.unified_memory,
            "peak_device_gb": gb(self.peak_device_bytes),
            "peak_host_gb": gb(self.peak_host_bytes),
            "peak_device_phase": self.peak_device_phase,
            "peak_host_phase": self.peak_host_phase,
            "breakdown": {
                p.name: {
                    "device_gb": gb(p.device_bytes),
                    "host_gb": gb(p.host_bytes),
                    "parts": {
                        part.name: {"device_gb": gb(part.device_bytes), "host_gb": gb(part.host_bytes)}
                        for part in p.parts
                    },
                }
                for p in self.phases
            },
            "assumptions": {k: getattr(self.assumptions, k) for k in self.assumptions.__dataclass_fields__},
            "notes": list(self.notes),
        }
