"""Which PyTorch build to install: a pure function of the detected hardware.

``decide(hardware, ...)`` returns a :class:`Plan` (backend, index URL, pins, reason) or an
:class:`Unsupported` with the reason in words a user can act on. Nothing here touches the system
or imports Qt: :mod:`.detect` gathers the facts, :mod:`.install` carries out the plan. The same
table serves the Windows, macOS and Linux installers.

Facts the table rests on (PyTorch 2.13 release matrix, CUDA toolkit release notes):
- PyTorch 2.13 ships CUDA 12.6 and CUDA 13.0 builds, ROCm 7.2 on Linux, CPU builds, and MPS in
  the default macOS arm64 wheels. Intel Macs have had no builds since PyTorch 2.2.
- CUDA 12.x runs on drivers >= 525.60.13 (Linux) / 528.33 (Windows); CUDA 13.x needs >= 580.
- CUDA 13 dropped Maxwell, Pascal and Volta (compute capability < 7.5); the CUDA 12.6 build
  carries kernels up to Hopper (9.0), so Blackwell (10.x, 12.x) needs the CUDA 13 build.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

TORCH_VERSION = "2.13.0"
# The environment's Python is a uv-managed build, whatever the system has, and the installers are
# built and checked end to end with 3.12; every dependency also ships 3.13 wheels, so an offline
# folder or an interpreter (--python) of any supported version works.
PYTHON_VERSION = "3.12"
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
PYTORCH_INDEX = "https://download.pytorch.org/whl"

Version = tuple[int, ...]

CUDA12_MIN_DRIVER: dict[str, Version] = {"linux": (525, 60, 13), "windows": (528, 33)}
CUDA13_MIN_DRIVER: Version = (580,)
CUDA13_MIN_CAPABILITY = (7, 5)
CUDA12_MAX_CAPABILITY = (9, 0)
OLDEST_CAPABILITY = (5, 0)

# GPU architectures in PyTorch's ROCm 7.2 build (torch.cuda.get_arch_list()).
ROCM_ARCHES = frozenset(
    {
        "gfx900", "gfx906", "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101",
        "gfx1102", "gfx1150", "gfx1151", "gfx1200", "gfx1201",
    }
)  # fmt: skip
# Close relatives of a supported architecture that run its kernels when told to pretend
# (HSA_OVERRIDE_GFX_VERSION). Unofficial, so the plan says so.
ROCM_STAND_INS = {
    "gfx1031": "10.3.0", "gfx1032": "10.3.0", "gfx1033": "10.3.0", "gfx1034": "10.3.0",
    "gfx1035": "10.3.0", "gfx1036": "10.3.0", "gfx1103": "11.0.0",
}  # fmt: skip


@dataclass(frozen=True)
class Backend:
    """One PyTorch build the launcher knows how to install."""

    key: str
    label: str
    device: str  # the torch device the install check puts a tensor on
    index: str | None  # sub-index of PYTORCH_INDEX; None: the default index (PyPI)
    local_label: str | None  # the "+cu130" part of torch.__version__, when the build has one
    download: str  # rough size, for the user


BACKENDS: dict[str, Backend] = {
    b.key: b
    for b in (
        Backend("cu130", "NVIDIA GPU (CUDA 13.0)", "cuda", "cu130", "cu130", "about 3 GB"),
        Backend("cu126", "NVIDIA GPU (CUDA 12.6)", "cuda", "cu126", "cu126", "about 3 GB"),
        Backend("rocm7.2", "AMD GPU (ROCm 7.2)", "cuda", "rocm7.2", "rocm7.2", "about 5 GB"),
        Backend("mps", "Apple silicon GPU (Metal)", "mps", None, None, "about 100 MB"),
        Backend("cpu", "CPU only (very slow for training)", "cpu", "cpu", "cpu", "about 200 MB"),
    )
}


@dataclass(frozen=True)
class NvidiaGpu:
    name: str
    driver: Version | None  # None: the GPU is there but no driver answered
    compute_capability: tuple[int, int] | None = None
    memory_mib: int | None = None


@dataclass(frozen=True)
class AmdGpu:
    name: str
    gfx: str | None = None  # e.g. "gfx1100"; None when it could not be read
    memory_mib: int | None = None


@dataclass(frozen=True)
class Hardware:
    """What detect.py found. ``system`` is "linux", "windows" or "darwin"."""

    system: str
    machine: str  # "x86_64", "arm64" or "aarch64"
    os_version: Version = ()
    nvidia: tuple[NvidiaGpu, ...] = ()
    amd: tuple[AmdGpu, ...] = ()
    other_gpus: tuple[str, ...] = ()
    amd_compute_driver: bool = False  # Linux: /dev/kfd, the amdgpu compute interface
    rocm_version: str | None = None  # informational: the wheels bring their own ROCm runtime
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfflineFolder:
    """A folder of wheels that replaces the network; ``files`` are the names in it."""

    path: str
    files: tuple[str, ...]
    python_mirror: str | None = None  # a folder of Python builds for uv, when the folder has one


@dataclass(frozen=True)
class Plan:
    backend: str
    label: str
    device: str
    reason: str
    torch: str  # the requirement, e.g. "torch==2.13.0"
    index_url: str | None  # None: the default index
    local_label: str | None  # what torch.__version__ must end with after "+", when known
    download: str
    python: str = PYTHON_VERSION  # a version, or the path of an interpreter to use
    managed_python: bool | None = True  # True: a uv-managed Python; None: any
    python_downloads: bool = True
    find_links: str | None = None  # offline: install only from this folder
    python_mirror: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the app and the check
    warnings: tuple[str, ...] = ()
    detected: str = ""  # one line on what was found, for the window and the log

    @property
    def offline(self) -> bool:
        return self.find_links is not None


@dataclass(frozen=True)
class Unsupported:
    reason: str
    detected: str = ""


@dataclass(frozen=True)
class _Choice:
    backend: str
    reason: str
    env: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = field(default=())


def decide(
    hardware: Hardware,
    *,
    override: str | None = None,
    offline: OfflineFolder | None = None,
    python: str | None = None,
) -> Plan | Unsupported:
    """The PyTorch build, index and pins for this machine, with the reason in plain words.

    ``override`` is a backend key the user picked; ``offline`` a wheel folder to use instead of
    the network; ``python`` an interpreter (path or version) to build the environment from.
    """
    detected = describe(hardware)
    automatic = _hardware_choice(hardware)
    if isinstance(automatic, Unsupported):
        return Unsupported(automatic.reason, detected)
    choice = automatic
    if override:
        allowed = allowed_backends(hardware)
        if override not in allowed:
            names = ", ".join(allowed) or "none"
            return Unsupported(f"'{override}' cannot be installed on this computer (possible: {names}).", detected)
        if override != automatic.backend:
            env = automatic.env if override == "rocm7.2" else ()
            why = f"Chosen by you; the automatic choice was {BACKENDS[automatic.backend].label}: {automatic.reason}"
            choice = _Choice(override, why, env)
    plan = _plan(hardware, choice, detected)
    if offline is not None:
        plan = _apply_offline(hardware, plan, offline, choice, override)
    if python and not isinstance(plan, Unsupported):
        plan = _replace(plan, python=python, managed_python=None, python_downloads=False)
    return plan


def allowed_backends(hardware: Hardware) -> tuple[str, ...]:
    """Backends a user may pick on this system, best first."""
    if hardware.system == "darwin":
        return ("mps", "cpu") if _apple_silicon(hardware) else ()
    if hardware.system == "windows":
        return ("cu130", "cu126", "cpu")
    if hardware.machine in ("aarch64", "arm64"):
        return ("cu130", "cu126", "cpu")
    return ("cu130", "cu126", "rocm7.2", "cpu")


def index_url(backend: str, system: str) -> str | None:
    """The wheel index for a backend; None means the default index (PyPI)."""
    if system == "darwin":
        return None  # PyPI's macOS wheels are the MPS/CPU build
    sub = BACKENDS[backend].index
    return f"{PYTORCH_INDEX}/{sub}" if sub else None


def describe(hardware: Hardware) -> str:
    """One line on what was detected, e.g. "Linux x86_64; NVIDIA GeForce RTX 4090 (driver 580.65)"."""
    system = {"linux": "Linux", "windows": "Windows", "darwin": "macOS"}.get(hardware.system, hardware.system)
    parts = [f"{system} {_dotted(hardware.os_version)} {hardware.machine}".replace("  ", " ")]
    for gpu in hardware.nvidia:
        driver = f"driver {_dotted(gpu.driver)}" if gpu.driver else "no driver"
        parts.append(f"{gpu.name} ({driver})")
    for gpu in hardware.amd:
        parts.append(f"{gpu.name} ({gpu.gfx})" if gpu.gfx else gpu.name)
    parts.extend(hardware.other_gpus)
    if len(parts) == 1:
        parts.append("no GPU found")
    return "; ".join(parts)


def _hardware_choice(hw: Hardware) -> _Choice | Unsupported:
    if hw.system == "darwin":
        return _mac_choice(hw)
    if hw.nvidia:
        return _nvidia_choice(hw)
    if hw.amd:
        return _amd_choice(hw)
    if hw.other_gpus:
        return _Choice("cpu", "Only GPUs that PyTorch cannot use here were found; training runs on the CPU (slow).")
    return _Choice("cpu", "No supported GPU was found; training runs on the CPU (slow).")


def _mac_choice(hw: Hardware) -> _Choice | Unsupported:
    if not _apple_silicon(hw):
        return Unsupported(
            "This is an Intel Mac. PyTorch has published no builds for Intel Macs since version 2.2, and "
            "Chroma Studio needs 2.5 or newer. It runs on Macs with Apple silicon (M1 or later)."
        )
    if hw.os_version and hw.os_version < (12, 3):
        return _Choice("cpu", "The Metal (MPS) backend needs macOS 12.3 or newer; update macOS to use the GPU.")
    return _Choice("mps", "Apple silicon: PyTorch uses the GPU through Metal (MPS).")


def _nvidia_choice(hw: Hardware) -> _Choice:
    gpu = max(hw.nvidia, key=lambda g: (g.compute_capability or (0, 0), g.memory_mib or 0, g.driver or ()))
    if gpu.driver is None:
        return _Choice(
            "cpu",
            f"{gpu.name} was found but no NVIDIA driver answered. Install the NVIDIA driver (580 or newer), "
            "then choose Retry.",
        )
    driver = _dotted(gpu.driver)
    capability = gpu.compute_capability
    cc = f"{capability[0]}.{capability[1]}" if capability else ""
    if capability is not None and capability < OLDEST_CAPABILITY:
        return _Choice("cpu", f"{gpu.name} (compute capability {cc}) is older than any GPU current PyTorch supports.")
    cuda12_minimum = CUDA12_MIN_DRIVER.get(hw.system, CUDA12_MIN_DRIVER["linux"])
    if gpu.driver < cuda12_minimum:
        return _Choice(
            "cpu",
            f"The NVIDIA driver {driver} is too old for PyTorch's CUDA builds. Update it to 580 or newer "
            f"(at least {_dotted(cuda12_minimum)}), then choose Retry.",
        )
    needs_cuda13 = capability is not None and capability > CUDA12_MAX_CAPABILITY
    runs_cuda13 = capability is None or capability >= CUDA13_MIN_CAPABILITY
    if gpu.driver >= CUDA13_MIN_DRIVER and runs_cuda13:
        return _Choice("cu130", f"{gpu.name} with driver {driver} (580 or newer) runs PyTorch's CUDA 13.0 build.")
    if needs_cuda13:
        return _Choice(
            "cpu",
            f"{gpu.name} needs PyTorch's CUDA 13 build, which needs NVIDIA driver 580 or newer; this computer "
            f"has {driver}. Update the driver, then choose Retry.",
        )
    if not runs_cuda13:
        return _Choice("cu126", f"{gpu.name} (compute capability {cc}) is not supported by CUDA 13; using CUDA 12.6.")
    return _Choice(
        "cu126",
        f"Driver {driver} is older than 580, so PyTorch's CUDA 12.6 build is used "
        "(update the driver to 580 or newer for CUDA 13).",
    )


def _amd_choice(hw: Hardware) -> _Choice:
    names = ", ".join(g.name for g in hw.amd)
    if hw.system != "linux":
        return _Choice(
            "cpu",
            f"{names}: PyTorch's AMD (ROCm) builds run on Linux only, so on {hw.system.title()} training runs "
            "on the CPU (very slow). Use Linux to train on this GPU.",
        )
    if hw.machine != "x86_64":
        return _Choice("cpu", f"{names}: PyTorch's ROCm builds exist for x86-64 Linux only.")
    if not hw.amd_compute_driver:
        return _Choice(
            "cpu",
            f"{names}: the amdgpu kernel driver's compute interface (/dev/kfd) is missing. Install the "
            "amdgpu driver with ROCm support and add your user to the 'render' group, then choose Retry.",
        )
    arches = [g.gfx for g in hw.amd if g.gfx]
    if any(a in ROCM_ARCHES for a in arches):
        return _Choice("rocm7.2", f"{names} ({', '.join(arches)}) is supported by PyTorch's ROCm 7.2 build.")
    stand_ins = [a for a in arches if a in ROCM_STAND_INS]
    if stand_ins:
        version = ROCM_STAND_INS[stand_ins[0]]
        return _Choice(
            "rocm7.2",
            f"{names} ({stand_ins[0]}) is not officially supported by ROCm; it usually runs with "
            f"HSA_OVERRIDE_GFX_VERSION={version}, which Chroma Studio sets for you.",
            env=(("HSA_OVERRIDE_GFX_VERSION", version),),
            warnings=("Unofficial ROCm support: if training crashes, choose CPU instead.",),
        )
    if not arches:
        return _Choice(
            "cpu",
            f"{names}: the GPU architecture could not be read, so ROCm support is unknown. Choose "
            "'AMD GPU (ROCm 7.2)' yourself to try it.",
        )
    return _Choice(
        "cpu", f"{names} ({', '.join(arches)}) is not supported by PyTorch's ROCm 7.2 build; training runs on the CPU."
    )


def _plan(hw: Hardware, choice: _Choice, detected: str) -> Plan:
    backend = BACKENDS[choice.backend]
    on_mac = hw.system == "darwin"
    return Plan(
        backend=backend.key,
        label=backend.label,
        device=backend.device,
        reason=choice.reason,
        torch=f"torch=={TORCH_VERSION}",
        index_url=index_url(backend.key, hw.system),
        local_label=None if on_mac else backend.local_label,
        download=backend.download,
        env=choice.env,
        warnings=choice.warnings,
        detected=detected,
    )


_TORCH_WHEEL = re.compile(
    r"^torch-(?P<version>[^-+]+)(?:\+(?P<label>[^-]+))?-cp(?P<py>\d+)-[^-]+-(?P<platform>.+)\.whl$"
)


@dataclass(frozen=True)
class TorchWheel:
    name: str
    version: str
    label: str | None
    python: str  # "3.12"
    platform: str


def parse_torch_wheel(name: str) -> TorchWheel | None:
    match = _TORCH_WHEEL.match(name)
    if not match:
        return None
    py = match["py"]
    return TorchWheel(name, match["version"], match["label"], f"{py[0]}.{py[1:]}", match["platform"])


def _fits_platform(wheel: TorchWheel, hw: Hardware) -> bool:
    tags = wheel.platform.split(".")
    machine = {"arm64": "aarch64"}.get(hw.machine, hw.machine) if hw.system == "linux" else hw.machine
    if hw.system == "linux":
        return any("linux" in t and t.endswith(machine) for t in tags)
    if hw.system == "windows":
        return any(t == ("win_arm64" if machine in ("arm64", "aarch64") else "win_amd64") for t in tags)
    return any(t.startswith("macosx") and (t.endswith("arm64") or t.endswith("universal2")) for t in tags)


def _wheel_serves(wheel: TorchWheel, backend: str, system: str) -> bool:
    """Whether a torch wheel is the build for ``backend`` (unlabelled wheels are PyPI's own build)."""
    if wheel.label is not None:
        return system != "darwin" and wheel.label == BACKENDS[backend].local_label
    if system == "darwin":
        return backend in ("mps", "cpu")
    if system == "windows":
        return backend == "cpu"
    return backend in ("cu130", "cu126", "cpu")  # PyPI's Linux wheel is a CUDA build that also runs on the CPU


def _apply_offline(
    hw: Hardware, plan: Plan, folder: OfflineFolder, choice: _Choice, override: str | None
) -> Plan | Unsupported:
    wheels = [w for w in map(parse_torch_wheel, folder.files) if w and w.version == TORCH_VERSION]
    wheels = [w for w in wheels if _fits_platform(w, hw) and w.python in SUPPORTED_PYTHONS]
    if not wheels:
        return Unsupported(
            f"The offline folder {folder.path} has no PyTorch {TORCH_VERSION} wheel for this computer "
            f"({hw.system} {hw.machine}, Python {'/'.join(SUPPORTED_PYTHONS)}). Add one, or remove the folder "
            "to install from the internet.",
            plan.detected,
        )
    preference = [plan.backend] + [b for b in allowed_backends(hw) if b != plan.backend]
    for backend in preference:
        serving = [w for w in wheels if _wheel_serves(w, backend, hw.system)]
        if serving:
            break
    else:
        labels = ", ".join(sorted({w.label or "default" for w in wheels}))
        return Unsupported(f"The offline folder only has PyTorch builds ({labels}) this computer cannot use.")
    wheel = max(serving, key=lambda w: (w.python == PYTHON_VERSION, w.python))
    if backend != plan.backend:
        env = choice.env if backend == "rocm7.2" else ()
        why = (
            f"The offline folder holds PyTorch for {BACKENDS[backend].label} only "
            f"(the automatic choice would be {plan.label}: {plan.reason})"
        )
        warnings = (f"Installing {BACKENDS[backend].label} from the offline folder.",) if not override else ()
        plan = _replace(plan, **_backend_fields(backend), reason=why, env=env, warnings=warnings)
    return _replace(
        plan,
        index_url=None,
        find_links=folder.path,
        python=wheel.python,
        local_label=wheel.label,
        managed_python=True if folder.python_mirror else None,
        python_downloads=bool(folder.python_mirror),
        python_mirror=folder.python_mirror,
    )


def _backend_fields(key: str) -> dict:
    backend = BACKENDS[key]
    return {"backend": key, "label": backend.label, "device": backend.device, "download": backend.download}


def _replace(plan: Plan, **changes) -> Plan:
    return replace(plan, **changes)


def _apple_silicon(hw: Hardware) -> bool:
    return hw.machine in ("arm64", "aarch64")


def _dotted(version: Sequence[int] | None) -> str:
    """(575, 51, 3) -> "575.51.03": NVIDIA writes the parts after the first with two digits."""
    if not version:
        return ""
    return ".".join([str(version[0]), *(f"{part:02d}" for part in version[1:])])


def parse_version(text: str) -> Version | None:
    """Parse a driver version: "580.65.06" -> (580, 65, 6); None when the text holds no version."""
    parts = re.findall(r"\d+", text.strip().split()[0]) if text.strip() else []
    return tuple(int(p) for p in parts) or None
