"""Fake hardware at the boundary: NVML answers, the OS's RAM figure, machines as detection describes them."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pynvml
import pytest

from chroma_studio.hardware import detect
from chroma_studio.hardware.detect import DeviceInfo, MachineInfo, metal_working_set

GiB = 2**30


@dataclass
class FakeGpu:
    name: str
    total_gb: float
    used_gb: float = 0.5  # the desktop and other programs
    capability: tuple[int, int] = (8, 9)
    pcie: tuple[int, int] | None = None  # (generation, lanes) NVML reports; None: not supported


class FakeNvml:
    """Answers the pynvml calls detection makes, for a list of fake GPUs."""

    def __init__(self, gpus: list[FakeGpu], driver: str = "550.54.14", cuda: int = 12040):
        self.gpus, self.driver, self.cuda = gpus, driver, cuda
        self.initialised = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def init() -> None:
            self.initialised = True

        def memory(handle: int) -> SimpleNamespace:
            gpu = self.gpus[handle]
            total = int(gpu.total_gb * GiB)
            used = int(gpu.used_gb * GiB)
            return SimpleNamespace(total=total, free=total - used, used=used)

        calls = {
            "nvmlInit": init,
            "nvmlShutdown": lambda: None,
            "nvmlDeviceGetCount": lambda: len(self.gpus),
            "nvmlDeviceGetHandleByIndex": lambda i: i,
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetName": lambda h: self.gpus[h].name,
            "nvmlSystemGetDriverVersion": lambda: self.driver,
            "nvmlSystemGetCudaDriverVersion": lambda: self.cuda,
            "nvmlDeviceGetCudaComputeCapability": lambda h: self.gpus[h].capability,
            "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: self._pcie(h, 0),
            "nvmlDeviceGetMaxPcieLinkWidth": lambda h: self._pcie(h, 1),
        }
        for name, fake in calls.items():
            monkeypatch.setattr(pynvml, name, fake)

    def _pcie(self, handle: int, field: int) -> int:
        link = self.gpus[handle].pcie
        if link is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return link[field]


def fake_ram(monkeypatch: pytest.MonkeyPatch, total_gb: float, available_fraction: float = 0.75) -> None:
    total = int(total_gb * GiB)
    memory = SimpleNamespace(total=total, available=int(total * available_fraction))
    monkeypatch.setattr(detect.psutil, "virtual_memory", lambda: memory)


def gpu_machine(
    kind: str,
    total_gb: float,
    *,
    free_gb: float | None = None,
    ram_gb: float = 64,
    capability: tuple[int, int] | None = (8, 9),
    pcie: tuple[int, int] | None = None,
) -> MachineInfo:
    """A machine with one discrete GPU (as detection would describe it) and a CPU."""
    total = int(total_gb * GiB)
    free = int((free_gb if free_gb is not None else total_gb - 0.5) * GiB)
    gen, width = pcie or (None, None)
    gpu = DeviceInfo(
        kind,
        0,
        f"Test {total_gb:g} GB",
        total,
        free,
        compute_capability=capability if kind == "cuda" else None,
        pcie_gen=gen,
        pcie_width=width,
    )
    return _machine(gpu, ram_gb)


def mac_machine(ram_gb: float, available_fraction: float = 0.75) -> MachineInfo:
    """Apple silicon: the GPU's memory is Metal's working set of the shared RAM."""
    ram = int(ram_gb * GiB)
    working_set = metal_working_set(ram)
    available = int(ram * available_fraction)
    mps = DeviceInfo("mps", 0, "Apple M2", working_set, min(working_set, available), unified_memory=True)
    return _machine(mps, ram_gb, available_fraction)


def cpu_machine(ram_gb: float = 32) -> MachineInfo:
    return _machine(None, ram_gb)


def _machine(device: DeviceInfo | None, ram_gb: float, available_fraction: float = 0.75) -> MachineInfo:
    ram = int(ram_gb * GiB)
    available = int(ram * available_fraction)
    cpu = DeviceInfo("cpu", 0, "x86_64", ram, available)
    devices = (device, cpu) if device is not None else (cpu,)
    return MachineInfo(devices, ram, available, 100 * GiB, 100 * GiB, "TestOS", "3.11")


def install_fake_nvml(monkeypatch: pytest.MonkeyPatch, *gpus: FakeGpu, ram_gb: float = 64, **kwargs) -> FakeNvml:
    """Fake NVIDIA GPUs; also pins RAM and hides AMD/Apple so detection is repeatable."""
    nvml = FakeNvml(list(gpus), **kwargs)
    nvml.install(monkeypatch)
    fake_ram(monkeypatch, ram_gb)
    monkeypatch.setattr(detect, "detect_rocm", lambda *a, **k: [])
    monkeypatch.setattr(detect, "is_apple_silicon", lambda: False)
    return nvml
