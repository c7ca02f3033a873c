"""What a run may use on a machine: free memory minus a safety margin, and the RAM it may pin.

A setting fits when every phase's predicted peak stays under what is free minus a safety margin
(10%, at least 0.5 GB): device memory on a GPU; on Apple silicon both Metal's working set and the
RAM that GPU and CPU share. Blocks streamed from RAM are pinned there (page-locked: the system
cannot page them out), so at most half the machine's RAM is pinned: the system, the page cache the
memory-mapped checkpoint passes through and other programs keep the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
from chroma_studio.hardware.phases import PINNED_PART, MemoryEstimate

GiB = 2**30
SAFETY_MARGIN = 0.10
MIN_MARGIN_BYTES = GiB // 2
PINNED_RAM_FRACTION = 0.5  # at most this share of the machine's RAM is pinned for streamed blocks


def spendable(free: int) -> int:
    """Free bytes minus the safety margin."""
    return max(0, free - max(int(free * SAFETY_MARGIN), MIN_MARGIN_BYTES))


def pinned_bytes(estimate: MemoryEstimate) -> int:
    """The streamed blocks' pinned copies in RAM (0 when nothing streams)."""
    return max(
        (part.host_bytes for p in estimate.phases for part in p.parts if part.name.startswith(PINNED_PART)),
        default=0,
    )


@dataclass(frozen=True)
class Budget:
    """What a run may use on a machine: free memory minus the safety margin."""

    device: DeviceInfo
    device_bytes: int  # the device's own memory (Metal's working set on Apple silicon)
    host_bytes: int  # free RAM
    shared: bool  # device and host draw on the same RAM (Apple silicon, CPU)
    ram_total: int = 0  # the machine's RAM, for the pinned-memory cap (0: no cap)
    ram_free: int = 0  # free RAM before the margin, for messages

    @classmethod
    def of(cls, machine: MachineInfo, device: DeviceInfo) -> Budget:
        shared = device.unified_memory or device.kind == "cpu"
        host = spendable(machine.ram_available)
        return cls(device, spendable(device.free_bytes), host, shared, machine.ram_total, machine.ram_available)

    def shortfall(self, estimate: MemoryEstimate) -> int:
        """Bytes missing for ``estimate`` to fit (0 when it fits)."""
        return max(0, self.device_shortfall(estimate), self.host_shortfall(estimate), self.pinned_excess(estimate))

    def device_shortfall(self, estimate: MemoryEstimate) -> int:
        return max(0, estimate.peak_device_bytes - self.device_bytes)

    def host_shortfall(self, estimate: MemoryEstimate) -> int:
        return max(0, self.host_need(estimate) - self.host_bytes)

    def host_need(self, estimate: MemoryEstimate) -> int:
        """The RAM ``estimate`` needs at its worst phase (device and host together where they share it)."""
        return estimate.peak_combined_bytes if self.shared else estimate.peak_host_bytes

    @property
    def pinned_cap(self) -> int | None:
        return int(self.ram_total * PINNED_RAM_FRACTION) if self.ram_total else None

    def pinned_excess(self, estimate: MemoryEstimate) -> int:
        """Bytes of streamed blocks' pinned copies beyond the cap (0 within it)."""
        cap = self.pinned_cap
        return max(0, pinned_bytes(estimate) - cap) if cap is not None else 0

    def ram_short(self, estimate: MemoryEstimate) -> bool:
        return bool(self.host_shortfall(estimate) or self.pinned_excess(estimate))
