"""First-run setup without a window (``--console``, or where no display is available)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from .decide import Plan
from .install import InstallState, SetupCancelled, SetupError, Work, run_setup


def run_console_setup(
    plan: Plan, work: Work, setup_kwargs: dict, log_file: Callable[[str], None]
) -> InstallState | None:
    """Run setup, printing progress to stderr; None when it failed (the message is printed)."""

    def say(text: str) -> None:
        log_file(text)
        print(text, file=sys.stderr, flush=True)

    def progress(done: int, total: int, title: str) -> None:
        percent = 100 * done // total if total else 100
        say(f"[{percent:3d}%] {title}")

    say(f"Detected: {plan.detected}")
    say(f"Installing: {plan.label} - {plan.reason}")
    for warning in plan.warnings:
        say(f"Warning: {warning}")
    try:
        return run_setup(plan, work, log=say, progress=progress, cancel=threading.Event(), **setup_kwargs)
    except SetupError as exc:
        say(f"Setup failed: {exc}")
    except SetupCancelled:
        say("Setup was cancelled.")
    except KeyboardInterrupt:
        say("Setup was interrupted.")
    return None
