"""Start Chroma Studio from the private environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from .layout import Layout


def app_command(layout: Layout, app_args: Sequence[str]) -> list[str]:
    """``python -m chroma_studio ARGS``; without arguments (the GUI) Windows uses pythonw (no console)."""
    python = layout.env_python if app_args else layout.env_gui_python
    return [str(python), "-m", "chroma_studio", *app_args]


def app_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    return {**base, **extra}


def start_app(argv: list[str], env: Mapping[str, str], replace: bool) -> int:
    """Run the app. ``replace``: become it (POSIX exec; on Windows wait for it). Otherwise detach."""
    if replace and os.name != "nt":
        os.execve(argv[0], argv, dict(env))  # does not return
    if replace:
        return subprocess.call(argv, env=dict(env))
    if os.name == "nt":
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
        subprocess.Popen(argv, env=dict(env), creationflags=flags, close_fds=True)
    else:
        subprocess.Popen(argv, env=dict(env), start_new_session=True, close_fds=True)
    return 0
