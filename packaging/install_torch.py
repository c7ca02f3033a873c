#!/usr/bin/env python3
"""Install the PyTorch build that fits this computer into the running Python environment.

    python packaging/install_torch.py [--backend cpu|cu130|cu126|rocm7.2|mps] [--dry-run]

Run it inside the virtual environment before ``pip install -e .``. The installers' own detection
and decision (``launcher/chroma_studio_launcher/detect.py`` and ``decide.py``) choose the build,
so a computer without an NVIDIA or AMD GPU gets the CPU build (about 200 MB) rather than the
3 GB of CUDA libraries that pip takes on Linux by default. Then ``pip install torch==<pin>
--index-url <PyTorch's index for that build>`` installs it. When that index cannot be reached,
one line says so and the same version comes from the default package index instead.
``pip install -e .`` keeps the torch installed here.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the script must start on an old Python to say which one it needs
    from collections.abc import Callable, Sequence

    from chroma_studio_launcher.decide import Hardware

    Runner = Callable[[Sequence[str], bool], tuple[int, str]]  # (argv, capture) -> (exit status, output)

LAUNCHER = Path(__file__).resolve().parent / "launcher"
LOWEST_PYTHON, HIGHEST_PYTHON = (3, 10), (3, 13)
PROBE_TIMEOUT = 10.0  # seconds to wait for PyTorch's index before using the default one
FAIL_FAST = ("--timeout", "15", "--retries", "1")  # pip's settings for PyTorch's index


def main(argv: Sequence[str] | None = None, *, hardware: Hardware | None = None, run: Runner | None = None) -> int:
    """Detect, decide, install; ``hardware`` and ``run`` replace the probes and pip in tests."""
    args = _parser().parse_args(argv)
    problem = python_problem(sys.version_info[:2])
    if not problem and not args.dry_run and _externally_managed():
        problem = "This Python is managed by the system: create and activate a virtual environment first."
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if str(LAUNCHER) not in sys.path:
        sys.path.insert(0, str(LAUNCHER))
    from chroma_studio_launcher.decide import Unsupported, decide
    from chroma_studio_launcher.detect import detect

    hardware = hardware or detect()
    plan = decide(hardware, override=args.backend)
    print(f"Detected: {plan.detected}")
    if isinstance(plan, Unsupported):
        print(f"Cannot install PyTorch here: {plan.reason}", file=sys.stderr)
        return 1
    print(f"PyTorch build: {plan.label}. {plan.reason}")
    for warning in plan.warnings:
        print(f"Warning: {warning}")
    index = args.index_url or plan.index_url
    caveat = default_index_caveat(plan.backend, hardware.system)
    code = install(plan.torch, index, caveat, dry_run=args.dry_run, run=run or run_pip)
    if code == 0 and not args.dry_run:
        print(f"Installed: torch {installed_torch()}")
    if code == 0:
        for name, value in plan.env:
            print(f"Before starting Chroma Studio, set {name}={value} (export {name}={value}).")
    return code


def install(requirement: str, index: str | None, caveat: str = "", *, dry_run: bool, run: Runner) -> int:
    """pip install from PyTorch's index for the build; if that fails, the same pin from the default index.

    When the index does not answer, pip still gets one quiet try (it may know a proxy, a
    certificate or a local wheel folder); its output is shown only if it succeeds.
    """
    if index is None:
        return run(pip_command(requirement, None, dry_run=dry_run), False)[0]
    first = pip_command(requirement, index, dry_run=dry_run)
    problem = probe(index)
    if problem is None:
        code, _ = run(first, False)
        why = "pip failed, see above"
    else:
        code, output = run(first, True)
        why = f"it could not be reached: {problem}"
        if code == 0:
            sys.stdout.write("".join(line for line in output.splitlines(True) if "Retrying (Retry(" not in line))
            print(f"PyTorch's index {index} did not answer ({problem}); pip found {requirement} in another source.")
    if code == 0:
        return 0
    print(fallback_message(requirement, index, why, caveat), file=sys.stderr, flush=True)
    return run(pip_command(requirement, None, dry_run=dry_run), False)[0]


def pip_command(requirement: str, index: str | None, *, dry_run: bool = False) -> list[str]:
    """The pip command line; ``index`` None: the default (configured) package index, with pip's own retries."""
    command = [sys.executable, "-m", "pip", "install", requirement]
    if index:
        command += ["--index-url", index, *FAIL_FAST]
    if dry_run:  # what an empty environment would get; installs nothing
        command += ["--dry-run", "--ignore-installed"]
    return command


def probe(index: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the index answers (any HTTP status will do), else the reason in a few words."""
    request = urllib.request.Request(index.rstrip("/") + "/torch/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def fallback_message(requirement: str, index: str, why: str, caveat: str = "") -> str:
    return (
        f"PyTorch's index {index} did not work ({why}). "
        f"Installing {requirement} from the default package index instead{caveat}."
    )


def default_index_caveat(backend: str, system: str) -> str:
    """What the default index's torch is, when it is not the chosen build (PyPI's builds per system)."""
    pypi_build = {"linux": ("cu130", "the CUDA 13.0 build (about 3 GB)"), "windows": ("cpu", "the CPU build")}
    if system not in pypi_build or pypi_build[system][0] == backend:
        return ""
    return f": on {system.title()} that is {pypi_build[system][1]}, not the {backend} one"


def python_problem(version: tuple[int, int]) -> str | None:
    """Why this Python cannot run Chroma Studio, or None."""
    if LOWEST_PYTHON <= version <= HIGHEST_PYTHON:
        return None
    return (
        f"Chroma Studio needs Python 3.10 to 3.13; this is Python {version[0]}.{version[1]}. "
        "Create the virtual environment with one of those (e.g. python3.12 -m venv .venv)."
    )


def installed_torch() -> str:
    """The version of torch in this environment now, with its build label ("2.13.0+cpu")."""
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "not found"


def run_pip(command: Sequence[str], capture: bool) -> tuple[int, str]:
    """Run pip, its output on the terminal or (``capture``) returned with the exit status."""
    print("$ " + " ".join(["python", *command[1:]]), flush=True)
    if not capture:
        return subprocess.run(command).returncode, ""
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


def _externally_managed() -> bool:
    in_venv = sys.prefix != sys.base_prefix or "CONDA_PREFIX" in os.environ
    marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
    return not in_venv and marker.is_file()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Install the PyTorch build that fits this computer.")
    parser.add_argument(
        "--backend", help="install this build (cu130, cu126, rocm7.2, mps, cpu) instead of the detected one"
    )
    parser.add_argument("--index-url", help="try this PyTorch index (e.g. a mirror) instead of download.pytorch.org")
    parser.add_argument(
        "--dry-run", action="store_true", help="show what pip would install into an empty environment; install nothing"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
