"""Find the GPUs without torch: NVML or nvidia-smi, the Linux sysfs/KFD tables or rocminfo, the OS.

The ``parse_*`` functions are pure (tested on recorded outputs); ``detect()`` runs the probes and
never raises: a probe that fails adds a note and the machine is treated as having no such GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .decide import AmdGpu, Hardware, NvidiaGpu, parse_version

log = logging.getLogger(__name__)

Runner = Callable[[list[str]], str | None]

NVIDIA_VENDOR = "0x10de"
AMD_VENDOR = "0x1002"
INTEL_VENDOR = "0x8086"
SMI_FIELDS = "name,driver_version,memory.total,compute_cap"


def detect(sys_root: Path = Path("/"), run: Runner | None = None) -> Hardware:
    """Probe this computer. ``sys_root`` and ``run`` exist for tests."""
    run = run or run_quietly
    system = normalize_system(sys.platform)
    machine = normalize_machine(platform.machine(), system, run)
    os_version = (parse_version(platform.mac_ver()[0]) or ()) if system == "darwin" else ()
    notes: list[str] = []
    nvidia: list[NvidiaGpu] = []
    amd: list[AmdGpu] = []
    other: list[str] = []
    kfd = False
    rocm_version = None
    if system in ("linux", "windows"):
        nvidia = probe_nvml(notes) or probe_nvidia_smi(run, system, notes)
    if system == "linux":
        vendors = read_drm_vendors(sys_root)
        if not nvidia and NVIDIA_VENDOR in vendors:
            nvidia = [NvidiaGpu("NVIDIA GPU", None)]
        if AMD_VENDOR in vendors:
            amd = probe_amd_linux(sys_root, run)
            kfd = (sys_root / "dev" / "kfd").exists()
            rocm_version = read_rocm_version(sys_root)
        if INTEL_VENDOR in vendors and not nvidia and not amd:
            other.append("Intel graphics")
    elif system == "windows":
        names = parse_video_controllers(run(_VIDEO_CONTROLLERS) or "")
        amd = [AmdGpu(n) for n in names["amd"]]
        if not nvidia:
            nvidia = [NvidiaGpu(n, None) for n in names["nvidia"]]
        other = names["other"]
    return Hardware(
        system=system,
        machine=machine,
        os_version=os_version,
        nvidia=tuple(nvidia),
        amd=tuple(amd),
        other_gpus=tuple(other),
        amd_compute_driver=kfd,
        rocm_version=rocm_version,
        notes=tuple(notes),
    )


def normalize_system(name: str) -> str:
    if name.startswith("win"):
        return "windows"
    if name == "darwin":
        return "darwin"
    return "linux"


def normalize_machine(machine: str, system: str, run: Runner) -> str:
    machine = machine.lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}.get(machine, machine)
    if system == "darwin" and machine == "x86_64" and (run(["sysctl", "-n", "sysctl.proc_translated"]) or "") == "1":
        return "arm64"  # an x86-64 launcher under Rosetta on Apple silicon
    return machine


def run_quietly(argv: list[str], timeout: float = 15) -> str | None:
    """A command's stdout, or None when it is missing, fails or hangs."""
    if not shutil.which(argv[0]) and not Path(argv[0]).is_file():
        return None
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, creationflags=flags)
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("%s failed: %s", argv[0], exc)
        return None
    if done.returncode != 0:
        log.info("%s exited %s: %s", argv[0], done.returncode, done.stderr.strip()[:500])
        return None
    return done.stdout.strip()


# --- NVIDIA -------------------------------------------------------------------------------------


def probe_nvml(notes: list[str]) -> list[NvidiaGpu]:
    """Ask NVML (through nvidia-ml-py, bundled with the launcher) for the GPUs and the driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound and friends: no driver
        log.info("NVML unavailable: %s", exc)
        return []
    try:
        driver = parse_version(_text(pynvml.nvmlSystemGetDriverVersion()))
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
            except Exception:
                capability = None
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)
            gpus.append(NvidiaGpu(_text(pynvml.nvmlDeviceGetName(handle)), driver, capability, int(memory)))
        return gpus
    except Exception as exc:
        notes.append(f"NVML answered partly: {exc}")
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def nvidia_smi_path(system: str) -> str:
    found = shutil.which("nvidia-smi")
    if found:
        return found
    if system == "windows":
        program_files = Path(os.environ.get("PROGRAMW6432", r"C:\Program Files"))
        windows = Path(os.environ.get("SYSTEMROOT", r"C:\Windows"))
        for candidate in (program_files / "NVIDIA Corporation" / "NVSMI", windows / "System32"):
            if (candidate / "nvidia-smi.exe").is_file():
                return str(candidate / "nvidia-smi.exe")
    return "nvidia-smi"


def probe_nvidia_smi(run: Runner, system: str, notes: list[str]) -> list[NvidiaGpu]:
    smi = nvidia_smi_path(system)
    query = [smi, "--format=csv,noheader,nounits"]
    out = run([*query, f"--query-gpu={SMI_FIELDS}"])
    if out is None:  # drivers before ~510 do not know compute_cap
        out = run([*query, f"--query-gpu={SMI_FIELDS.rsplit(',', 1)[0]}"])
    if out is None:
        return []
    gpus = parse_nvidia_smi(out)
    if not gpus:
        notes.append(f"nvidia-smi answered but listed no GPU: {out[:200]!r}")
    return gpus


def parse_nvidia_smi(text: str) -> list[NvidiaGpu]:
    """Rows of ``name, driver_version, memory.total[, compute_cap]`` (csv, noheader, nounits)."""
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 3 or not cells[0]:
            continue
        memory = int(cells[2]) if cells[2].isdigit() else None
        capability = None
        if len(cells) > 3:
            parts = cells[3].split(".")
            if len(parts) == 2 and all(p.isdigit() for p in parts):
                capability = (int(parts[0]), int(parts[1]))
        gpus.append(NvidiaGpu(cells[0], parse_version(cells[1]), capability, memory))
    return gpus


# --- AMD ----------------------------------------------------------------------------------------


def read_drm_vendors(sys_root: Path) -> set[str]:
    """PCI vendor ids of the display devices in /sys/class/drm (card0, card1, ...)."""
    vendors = set()
    for vendor_file in sorted((sys_root / "sys" / "class" / "drm").glob("card*/device/vendor")):
        try:
            vendors.add(vendor_file.read_text().strip().lower())
        except OSError:
            continue
    return vendors


def probe_amd_linux(sys_root: Path, run: Runner) -> list[AmdGpu]:
    """AMD GPUs with their gfx architecture, from the KFD topology, else from rocminfo."""
    nodes = sys_root / "sys" / "class" / "kfd" / "kfd" / "topology" / "nodes"
    texts = [p.read_text(errors="replace") for p in sorted(nodes.glob("*/properties")) if p.is_file()]
    arches = parse_kfd_properties(texts)
    if arches:
        names = read_drm_product_names(sys_root)
        return [AmdGpu(names[i] if i < len(names) else "AMD GPU", gfx) for i, gfx in enumerate(arches)]
    rocminfo = _rocminfo_path(sys_root)
    out = run([rocminfo]) if rocminfo else None
    gpus = parse_rocminfo(out or "")
    return gpus or [AmdGpu(name) for name in (read_drm_product_names(sys_root) or ["AMD GPU"])]


def read_drm_product_names(sys_root: Path) -> list[str]:
    names = []
    for card in sorted((sys_root / "sys" / "class" / "drm").glob("card*/device")):
        vendor = card / "vendor"
        if vendor.is_file() and vendor.read_text().strip().lower() == AMD_VENDOR:
            product = card / "product_name"
            names.append(product.read_text().strip() if product.is_file() else "AMD GPU")
    return names


def parse_kfd_properties(texts: Iterable[str]) -> list[str]:
    """gfx names from KFD node ``properties`` files; CPU nodes have gfx_target_version 0."""
    arches = []
    for text in texts:
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "gfx_target_version" and value.strip().isdigit() and int(value) > 0:
                arches.append(gfx_name(int(value)))
    return arches


def gfx_name(target_version: int) -> str:
    """KFD's gfx_target_version (major*10000 + minor*100 + stepping) -> "gfx90a", "gfx1100", ..."""
    major, minor, stepping = target_version // 10000, (target_version // 100) % 100, target_version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def parse_rocminfo(text: str) -> list[AmdGpu]:
    """GPU agents in ``rocminfo`` output: a ``Name: gfxNNNN`` line, then ``Marketing Name:``."""
    gpus = []
    gfx = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Name:"):
            value = line.split(":", 1)[1].strip()
            gfx = value if value.startswith("gfx") else None
        elif line.startswith("Marketing Name:") and gfx:
            gpus.append(AmdGpu(line.split(":", 1)[1].strip() or "AMD GPU", gfx))
            gfx = None
    return gpus


def read_rocm_version(sys_root: Path) -> str | None:
    version_file = sys_root / "opt" / "rocm" / ".info" / "version"
    try:
        return version_file.read_text().strip() or None
    except OSError:
        return None


def _rocminfo_path(sys_root: Path) -> str | None:
    bundled = sys_root / "opt" / "rocm" / "bin" / "rocminfo"
    return shutil.which("rocminfo") or (str(bundled) if bundled.is_file() else None)


# --- Windows ------------------------------------------------------------------------------------

_VIDEO_CONTROLLERS = [
    "powershell",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    "Get-CimInstance Win32_VideoController | ForEach-Object { $_.AdapterCompatibility + '|' + $_.Name }",
]


def parse_video_controllers(text: str) -> dict[str, list[str]]:
    """``vendor|name`` lines from Win32_VideoController, sorted into nvidia / amd / other."""
    found: dict[str, list[str]] = {"nvidia": [], "amd": [], "other": []}
    for line in text.splitlines():
        vendor, _, name = line.partition("|")
        name = name.strip() or vendor.strip()
        key = vendor.lower() + " " + name.lower()
        if not name or "microsoft basic" in key or "remote display" in key:
            continue
        if "nvidia" in key:
            found["nvidia"].append(name)
        elif "advanced micro devices" in key or "amd" in key or "radeon" in key:
            found["amd"].append(name)
        else:
            found["other"].append(name)
    return found


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
