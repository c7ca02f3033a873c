"""Run one setup command, streaming its output line by line, cancellable from another thread."""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping

CANCELLED = -999
TIMED_OUT = -998

# Variables PyInstaller's bootloader and Qt hook point into the launcher's own folder; a child
# process (uv, the environment's Python, the app) must not inherit those paths.
_PATH_VARIABLES = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "PATH", "QT_PLUGIN_PATH", "QML2_IMPORT_PATH")
_DROPPED = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX", "_MEIPASS2")


def child_environment(environ: Mapping[str, str], bundle_dir: str | None) -> dict[str, str]:
    """The environment for child processes, without the frozen launcher's private paths."""
    env = {k: v for k, v in environ.items() if k not in _DROPPED and not k.startswith("_PYI_")}
    if bundle_dir is None:
        return env
    if "LD_LIBRARY_PATH_ORIG" in env:
        env["LD_LIBRARY_PATH"] = env.pop("LD_LIBRARY_PATH_ORIG")
    prefix = os.path.normcase(os.path.abspath(bundle_dir))
    for key in _PATH_VARIABLES:
        if key not in env:
            continue
        kept = [p for p in env[key].split(os.pathsep) if p and not _inside(p, prefix)]
        if kept:
            env[key] = os.pathsep.join(kept)
        else:
            del env[key]
    return env


def _inside(path: str, prefix: str) -> bool:
    path = os.path.normcase(os.path.abspath(path))
    return path == prefix or path.startswith(prefix.rstrip("\\/") + os.sep)


def run_command(
    argv: list[str],
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    cancel: threading.Event,
    timeout: float | None = None,
) -> int:
    """Run ``argv``; every output line goes to ``on_line``. Returns the exit code, CANCELLED or TIMED_OUT."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    process = subprocess.Popen(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        creationflags=flags,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process, lines), name="setup-output", daemon=True)
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    result = None
    while result is None:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is None:  # the output closed: the process is ending
            result = process.wait()
        elif line:
            on_line(line.rstrip("\r\n"))
        if cancel.is_set():
            result = CANCELLED
        elif deadline is not None and time.monotonic() > deadline:
            result = TIMED_OUT
    if result in (CANCELLED, TIMED_OUT):
        _stop(process)
    reader.join(timeout=5)
    while not lines.empty():
        line = lines.get_nowait()
        if line:
            on_line(line.rstrip("\r\n"))
    return result


def _pump(process: subprocess.Popen, lines: queue.Queue) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
    lines.put(None)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
