"""Carry out a plan with uv: environment, PyTorch, Chroma Studio, then a real tensor on the device.

What to do (:func:`plan_work`) and the commands (:func:`build_steps`) are pure functions; only
:func:`run_setup` runs anything. Updates reuse the environment: a newer bundled Chroma Studio is
installed over the old one, and PyTorch is reinstalled only when the launcher's pin changed.
"""

from __future__ import annotations

import enum
import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .bundle import Bundle
from .decide import Plan
from .layout import Layout
from .runner import CANCELLED, TIMED_OUT, run_command

DEVICE_CHECK_MARKER = "CHROMA_STUDIO_DEVICE_CHECK"
# Runs in the new environment: one small tensor on the device, doubled and summed (expects 4.0).
DEVICE_CHECK = f"""
import json, sys
import torch
device = sys.argv[1]
info = {{"torch": torch.__version__, "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None)}}
if device == "cuda":
    info["name"] = torch.cuda.get_device_name(0)
x = torch.ones(2, device=device)
info["sum"] = float((x * 2).sum().item())
print("{DEVICE_CHECK_MARKER} " + json.dumps(info))
"""
DEVICE_CHECK_TIMEOUT = 600.0
# Inherited uv settings that may stay: TLS and network tuning, a PyPI mirror. Others could
# redirect PyTorch to the wrong build or the environment elsewhere.
KEPT_UV_VARIABLES = ("UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "UV_CONCURRENT_DOWNLOADS", "UV_DEFAULT_INDEX", "UV_INDEX_URL")


class Work(enum.Enum):
    READY = "ready"  # installed and current: start the app
    UPDATE = "update"  # reuse the environment, install the bundled Chroma Studio (and PyTorch if its pin moved)
    INSTALL = "install"  # a new environment from scratch


class SetupError(RuntimeError):
    """A step failed; the message says what to do. The log has the command's own output."""


class SetupCancelled(RuntimeError):
    pass


@dataclass(frozen=True)
class InstallState:
    """install.json: what the environment holds, so later starts go straight in."""

    app_version: str
    backend: str
    torch: str  # the requirement it was installed with
    torch_version: str  # what the device check reported
    python: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the app
    launcher_version: str = __version__
    installed_at: str = ""


def load_state(path: Path) -> InstallState | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return InstallState(**data)
    except (OSError, ValueError, TypeError):
        return None


def save_state(path: Path, state: InstallState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def installed_app_version(layout: Layout) -> str | None:
    """The chroma-studio version installed in the environment (from its dist-info folder)."""
    for site in layout.site_packages():
        for info in sorted(site.glob("chroma_studio-*.dist-info")):
            return info.name[len("chroma_studio-") : -len(".dist-info")]
    return None


def plan_work(
    state: InstallState | None,
    installed_version: str | None,
    bundled_version: str,
    env_ready: bool,
    torch_requirement: str,
    requested_backend: str | None = None,
    reinstall: bool = False,
) -> Work:
    """Decide between starting, updating in place and installing anew."""
    if reinstall or state is None or not env_ready or installed_version is None:
        return Work.INSTALL
    if requested_backend and requested_backend != state.backend:
        return Work.INSTALL  # another PyTorch build: start from a clean environment
    if installed_version != bundled_version or state.app_version != bundled_version or state.torch != torch_requirement:
        return Work.UPDATE
    return Work.READY


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    argv: tuple[str, ...]
    weight: int
    timeout: float | None = None


def build_steps(work: Work, plan: Plan, layout: Layout, bundle: Bundle, torch_changed: bool) -> list[Step]:
    """The commands for ``work``; READY needs none."""
    if work is Work.READY:
        return []
    uv = str(bundle.uv)
    python = str(layout.env_python)
    sources = ["--no-index", "--find-links", plan.find_links] if plan.find_links else []
    torch_sources = sources or (["--index-url", plan.index_url] if plan.index_url else [])
    steps = []
    if work is Work.INSTALL:
        venv = [uv, "venv", str(layout.env), "--clear", "--python", plan.python, "--prompt", "chroma-studio"]
        if plan.managed_python is True:
            venv.append("--managed-python")
        if not plan.python_downloads:
            venv.append("--no-python-downloads")
        steps.append(Step("venv", "Preparing Python", tuple(venv), 5))
    if work is Work.INSTALL or torch_changed:
        torch = [uv, "pip", "install", "--python", python, plan.torch, *torch_sources]
        if work is Work.UPDATE:
            torch += ["--reinstall-package", "torch"]
        steps.append(Step("torch", f"Installing PyTorch for {plan.label} ({plan.download})", tuple(torch), 60))
    app = [uv, "pip", "install", "--python", python, str(bundle.app_wheel), "--constraints", str(layout.constraints)]
    app += [*sources, "--reinstall-package", "chroma-studio"]
    steps.append(Step("app", f"Installing Chroma Studio {bundle.app_version}", tuple(app), 30))
    check = (python, "-c", DEVICE_CHECK, plan.device)
    steps.append(Step("check", f"Checking PyTorch on the {plan.device.upper()}", check, 5, DEVICE_CHECK_TIMEOUT))
    return steps


def uv_environment(base: Mapping[str, str], layout: Layout, plan: Plan) -> dict[str, str]:
    """The environment for uv and the checks: private cache and Python folder, no user uv config."""
    env = {k: v for k, v in base.items() if not k.startswith("UV_") or k in KEPT_UV_VARIABLES}
    env.update(
        UV_CACHE_DIR=str(layout.uv_cache),
        UV_PYTHON_INSTALL_DIR=str(layout.python_dir),
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
        NO_COLOR="1",
        PYTHONIOENCODING="utf-8",
    )
    if plan.python_mirror:
        env["UV_PYTHON_INSTALL_MIRROR"] = Path(plan.python_mirror).as_uri()
    if plan.offline:
        env["UV_OFFLINE"] = "1"
    return env


def read_device_check(output: str, plan: Plan) -> tuple[dict, str | None]:
    """The check's report and an error message (None when PyTorch ran on the planned device)."""
    reports = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith(DEVICE_CHECK_MARKER + " ")]
    if not reports:
        return {}, f"PyTorch could not put a tensor on the {plan.device.upper()}."
    info = json.loads(reports[-1])
    version = str(info.get("torch", ""))
    if info.get("sum") != 4.0:
        return info, f"PyTorch computed a wrong result on the {plan.device.upper()} ({info.get('sum')} instead of 4.0)."
    expected = plan.torch.split("==", 1)[1]
    if version.split("+", 1)[0] != expected:
        return info, f"PyTorch {version} is installed, but {expected} was required."
    if plan.local_label and not version.endswith("+" + plan.local_label):
        return info, f"PyTorch {version} is installed, but the {plan.label} build (+{plan.local_label}) was required."
    return info, None


_HINTS = {
    "venv": "Could not prepare Python. Check the internet connection (or the offline folder) and choose Retry.",
    "torch": "Downloading PyTorch failed. Check the internet connection or proxy and disk space, then choose Retry.",
    "app": "Installing Chroma Studio's packages failed. Check the internet connection and choose Retry.",
}
_DEVICE_HINTS = {
    "cuda": "Update the GPU driver, or choose another backend (CPU always works) and Retry.",
    "mps": "Update macOS (12.3 or newer), or choose CPU and Retry.",
    "cpu": "See the log for PyTorch's message.",
}


def run_setup(
    plan: Plan,
    work: Work,
    layout: Layout,
    bundle: Bundle,
    log: Callable[[str], None],
    progress: Callable[[int, int, str], None],
    cancel: threading.Event,
    previous: InstallState | None = None,
    base_env: Mapping[str, str] | None = None,
    runner: Callable[..., int] = run_command,
) -> InstallState:
    """Run the steps for ``work``; raises SetupError (with a hint) or SetupCancelled."""
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.constraints.write_text(plan.torch + "\n", encoding="utf-8")
    torch_changed = previous is None or previous.torch != plan.torch
    steps = build_steps(work, plan, layout, bundle, torch_changed)
    env = uv_environment(os.environ if base_env is None else base_env, layout, plan)
    total = sum(step.weight for step in steps)
    done = 0
    check_output: list[str] = []
    for step in steps:
        if cancel.is_set():
            raise SetupCancelled()
        progress(done, total, step.title)
        log(f"== {step.title}")
        log("$ " + _quote(step.argv))
        started = time.monotonic()
        sink = check_output.append if step.key == "check" else None

        def on_line(line: str, sink=sink) -> None:
            log(line)
            if sink is not None:
                sink(line)

        step_env = {**env, **dict(plan.env)} if step.key == "check" else env
        code = runner(list(step.argv), step_env, on_line, cancel, step.timeout)
        if code == CANCELLED or cancel.is_set():
            raise SetupCancelled()
        log(f"   (exit {code} after {time.monotonic() - started:.0f} s)")
        if code == TIMED_OUT:
            raise SetupError(f"'{step.title}' took too long. {_DEVICE_HINTS.get(plan.device, '')}")
        if code != 0 and step.key != "check":
            raise SetupError(_HINTS[step.key])
        done += step.weight
    info, problem = read_device_check("\n".join(check_output), plan)
    if problem:
        raise SetupError(f"{problem} {_DEVICE_HINTS.get(plan.device, '')}")
    log(f"PyTorch {info.get('torch')} works on {info.get('name') or plan.device.upper()}.")
    state = InstallState(
        app_version=bundle.app_version,
        backend=plan.backend,
        torch=plan.torch,
        torch_version=str(info.get("torch")),
        python=plan.python,
        env=dict(plan.env),
        installed_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    save_state(layout.state_file, state)
    progress(total, total, "Ready")
    return state


def _quote(argv: tuple[str, ...]) -> str:
    shown = tuple("<device check>" if a == DEVICE_CHECK else a for a in argv)
    return subprocess.list2cmdline(shown) if os.name == "nt" else shlex.join(shown)
