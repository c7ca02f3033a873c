"""What this machine has: accelerators and their memory, system RAM, free disk.

Detection runs in the GUI process before any training, so it never creates a CUDA context:
NVIDIA cards are read through NVML (``pynvml``), AMD cards through sysfs, and torch is asked
only where nothing else knows and only when torch is already imported (ROCm, Intel XPU, Apple's
exact Metal working set). Any failure of a probe means "no such device", logged, never an error.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from chroma_studio.base.units import format_bytes

logger = logging.getLogger(__name__)

GiB = 2**30
DeviceKind = Literal["cuda", "rocm", "mps", "xpu", "cpu"]
ACCELERATORS = ("cuda", "rocm", "mps", "xpu")
_AMD_VENDOR = "0x1002"
_MIN_DISCRETE_VRAM = 2 * GiB  # smaller AMD "VRAM" is an APU's carve-out of system RAM


@dataclass(frozen=True)
class DeviceInfo:
    """One compute device. On Apple silicon (``unified_memory``) its memory is system RAM and
    ``total_bytes`` is Metal's recommended working set."""

    kind: DeviceKind
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    driver: str | None = None
    cuda_driver_version: str | None = None
    compute_capability: tuple[int, int] | None = None
    unified_memory: bool = False
    pcie_gen: int | None = None  # the PCIe link the card and the board allow together (NVML), where known
    pcie_width: int | None = None

    @property
    def pcie(self) -> tuple[int, int] | None:
        """(generation, lanes) of the card's PCIe link, where the driver reported it."""
        return (self.pcie_gen, self.pcie_width) if self.pcie_gen and self.pcie_width else None

    @property
    def is_accelerator(self) -> bool:
        return self.kind in ACCELERATORS

    @property
    def supports_nf4(self) -> bool:
        """bitsandbytes NF4 runs on NVIDIA CUDA only."""
        return self.kind == "cuda"

    @property
    def supports_bf16(self) -> bool:
        if self.kind == "cuda" and self.compute_capability is not None:
            return self.compute_capability >= (8, 0)
        return True

    def details(self) -> list[str]:
        """Driver, CUDA driver version and compute capability, where known."""
        details = []
        if self.driver:
            details.append(f"driver {self.driver}")
        if self.cuda_driver_version:
            details.append(f"CUDA {self.cuda_driver_version}")
        if self.compute_capability:
            details.append("compute {}.{}".format(*self.compute_capability))
        if self.pcie:
            details.append("PCIe {}.0 x{}".format(*self.pcie))
        return details

    def describe(self) -> str:
        memory = format_bytes(self.total_bytes, decimals=1)
        if self.kind == "cpu":
            return f"CPU ({self.name}), {memory} RAM"
        free = f", {format_bytes(self.free_bytes, decimals=1)} free" if self.free_bytes != self.total_bytes else ""
        label = {"cuda": "NVIDIA", "rocm": "AMD", "mps": "Apple", "xpu": "Intel"}[self.kind]
        name = self.name if self.name.lower().startswith(label.lower()) else f"{label} {self.name}"
        extra = " (unified memory: Metal working set)" if self.unified_memory else ""
        return f"{name}: {memory}{free}{extra}"


@dataclass(frozen=True)
class MachineInfo:
    devices: tuple[DeviceInfo, ...]
    ram_total: int
    ram_available: int
    disk_free_output: int | None
    disk_free_cache: int | None
    os: str
    python: str
    output_dir: str | None = None
    cache_dir: str | None = None

    @property
    def accelerators(self) -> tuple[DeviceInfo, ...]:
        return tuple(d for d in self.devices if d.is_accelerator)

    @property
    def best_device(self) -> DeviceInfo:
        """The accelerator with the most memory, else the CPU."""
        if self.accelerators:
            return max(self.accelerators, key=lambda d: (d.total_bytes, -d.index))
        return next(d for d in self.devices if d.kind == "cpu")

    @property
    def gpus(self) -> tuple[DeviceInfo, ...]:
        """The accelerators of the best device's kind: those one run may train on, alone or together."""
        kind = self.best_device.kind
        return tuple(d for d in self.accelerators if d.kind == kind)

    @property
    def sizing_device(self) -> DeviceInfo:
        """The device settings are sized for: the smallest of ``gpus`` (the least free memory among
        equals), so they fit whichever of them trains and each of them in a data-parallel run; else
        the CPU."""
        if not self.gpus:
            return self.best_device
        return min(self.gpus, key=lambda d: (d.total_bytes, d.free_bytes, d.index))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["devices"] = [asdict(d) for d in self.devices]
        return data


# -- NVIDIA ------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def detect_nvidia() -> list[DeviceInfo]:
    """Every NVIDIA GPU NVML reports. No NVML library, no driver or any NVML error: an empty list."""
    try:
        import pynvml
    except ImportError:
        logger.debug("nvidia-ml-py is not installed: no NVIDIA detection")
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no usable NVIDIA GPU
        logger.info("NVML is not available (%s): no NVIDIA GPU", exc)
        return []
    devices: list[DeviceInfo] = []
    try:
        driver = _nvml_optional(lambda: _text(pynvml.nvmlSystemGetDriverVersion()))
        cuda = _nvml_optional(pynvml.nvmlSystemGetCudaDriverVersion)
        cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) and cuda > 0 else None
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                name = _text(pynvml.nvmlDeviceGetName(handle))
            except Exception as exc:
                logger.warning("NVML could not read GPU %d (%s); skipping it", index, exc)
                continue
            capability = _nvml_optional(lambda h=handle: pynvml.nvmlDeviceGetCudaComputeCapability(h))
            # the most the card and the board allow together (the current link slows down when idle)
            gen = _nvml_optional(lambda h=handle: pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h))
            width = _nvml_optional(lambda h=handle: pynvml.nvmlDeviceGetMaxPcieLinkWidth(h))
            devices.append(
                DeviceInfo(
                    kind="cuda",
                    index=index,
                    name=name,
                    total_bytes=int(memory.total),
                    free_bytes=int(memory.free),
                    driver=driver,
                    cuda_driver_version=cuda_version,
                    compute_capability=tuple(int(x) for x in capability) if capability else None,
                    pcie_gen=int(gen) if isinstance(gen, int) and gen > 0 else None,
                    pcie_width=int(width) if isinstance(width, int) and width > 0 else None,
                )
            )
    except Exception as exc:
        logger.warning("NVML failed while listing GPUs (%s): treating this machine as having no NVIDIA GPU", exc)
        devices = []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception as exc:
            logger.debug("nvmlShutdown failed: %s", exc)
    return devices


def _nvml_optional(read: Any) -> Any:
    try:
        return read()
    except Exception as exc:
        logger.debug("NVML query failed: %s", exc)
        return None


# -- AMD ROCm ----------------------------------------------------------------------------------------
def detect_rocm(drm_root: Path = Path("/sys/class/drm")) -> list[DeviceInfo]:
    """AMD GPUs: through torch when torch (a ROCm build) is already loaded, else from sysfs."""
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.version, "hip", None):
        return _torch_gpus(torch, "rocm", driver=f"HIP {torch.version.hip}")
    return _sysfs_amd_gpus(drm_root)


def _sysfs_amd_gpus(drm_root: Path) -> list[DeviceInfo]:
    devices: list[DeviceInfo] = []
    if not drm_root.is_dir():
        return devices
    driver = _read(Path("/sys/module/amdgpu/version"))
    for card in sorted(drm_root.glob("card[0-9]*")):
        if "-" in card.name:  # connectors such as card0-DP-1
            continue
        device = card / "device"
        if _read(device / "vendor") != _AMD_VENDOR:
            continue
        total = _read_int(device / "mem_info_vram_total")
        if total is None or total < _MIN_DISCRETE_VRAM:
            continue
        used = _read_int(device / "mem_info_vram_used") or 0
        name = _read(device / "product_name") or f"AMD GPU ({card.name})"
        devices.append(
            DeviceInfo(
                kind="rocm",
                index=len(devices),
                name=name,
                total_bytes=total,
                free_bytes=max(0, total - used),
                driver=f"amdgpu {driver}" if driver else None,
            )
        )
    return devices


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _torch_gpus(torch: Any, kind: DeviceKind, driver: str | None) -> list[DeviceInfo]:
    """GPUs as an already-imported torch sees them (free memory only if a context already exists)."""
    devices: list[DeviceInfo] = []
    try:
        api = torch.xpu if kind == "xpu" else torch.cuda
        if not api.is_available():
            return devices
        for index in range(api.device_count()):
            props = api.get_device_properties(index)
            total = int(props.total_memory)
            free = total
            if kind != "xpu" and torch.cuda.is_initialized():
                free = int(torch.cuda.mem_get_info(index)[0])
            devices.append(
                DeviceInfo(
                    kind=kind, index=index, name=str(props.name), total_bytes=total, free_bytes=free, driver=driver
                )
            )
    except Exception as exc:
        logger.warning("torch could not list %s devices (%s)", kind, exc)
        return []
    return devices


# -- Apple silicon and Intel XPU -----------------------------------------------------------------------
def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def metal_working_set(ram_total: int) -> int:
    """The memory Metal lets one process keep resident (``recommendedMaxWorkingSetSize``).

    Read from torch when it is already imported; otherwise macOS's rule as observed on Apple
    silicon: about two thirds of RAM up to 36 GB of RAM, three quarters above.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.backends.mps.is_available():
                return int(torch.mps.recommended_max_memory())
        except Exception as exc:
            logger.debug("torch.mps.recommended_max_memory failed: %s", exc)
    fraction = 2 / 3 if ram_total <= 36 * GiB else 3 / 4
    return int(ram_total * fraction)


def detect_mps(ram_total: int, ram_available: int) -> list[DeviceInfo]:
    if not is_apple_silicon():
        return []
    working_set = metal_working_set(ram_total)
    return [
        DeviceInfo(
            kind="mps",
            index=0,
            name=_apple_chip_name(),
            total_bytes=working_set,
            free_bytes=min(working_set, ram_available),
            driver=f"macOS {platform.mac_ver()[0]}",
            unified_memory=True,
        )
    ]


def _apple_chip_name() -> str:
    try:
        result = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5, check=False
        )
        return result.stdout.strip() or "Apple silicon"
    except (OSError, subprocess.SubprocessError):
        return "Apple silicon"


def detect_xpu() -> list[DeviceInfo]:
    """Intel GPUs, best effort: only an already-imported torch with XPU support knows them."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "xpu"):
        return []
    return _torch_gpus(torch, "xpu", driver=None)


# -- the whole machine -------------------------------------------------------------------------------
def cpu_device(ram_total: int, ram_available: int) -> DeviceInfo:
    name = platform.processor() or platform.machine() or "CPU"
    return DeviceInfo(kind="cpu", index=0, name=name, total_bytes=ram_total, free_bytes=ram_available)


def free_disk(path: str | os.PathLike | None) -> int | None:
    """Free bytes on the disk that holds ``path`` (or its nearest existing parent)."""
    if path is None:
        return None
    current = Path(path).expanduser().absolute()
    while not current.exists() and current.parent != current:
        current = current.parent
    try:
        return shutil.disk_usage(current).free
    except OSError as exc:
        logger.debug("cannot read free space at %s: %s", current, exc)
        return None


def hf_cache_dir() -> Path:
    """Where Hugging Face downloads go (HF_HUB_CACHE / HF_HOME respected)."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except ImportError:
        home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
        return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")


def detect_machine(output_dir: str | os.PathLike | None = None) -> MachineInfo:
    """Detect every device, RAM and free disk (at ``output_dir`` and the Hugging Face cache)."""
    memory = psutil.virtual_memory()
    ram_total, ram_available = int(memory.total), int(memory.available)
    devices = [*detect_nvidia()]
    if not devices:
        devices += detect_rocm()
    devices += detect_mps(ram_total, ram_available)
    devices += detect_xpu()
    devices.append(cpu_device(ram_total, ram_available))
    cache = hf_cache_dir()
    info = MachineInfo(
        devices=tuple(devices),
        ram_total=ram_total,
        ram_available=ram_available,
        disk_free_output=free_disk(output_dir),
        disk_free_cache=free_disk(cache),
        os=f"{platform.system()} {platform.release()}".strip(),
        python=platform.python_version(),
        output_dir=str(output_dir) if output_dir is not None else None,
        cache_dir=str(cache),
    )
    logger.info("detected: %s", "; ".join(d.describe() for d in info.devices))
    return info
