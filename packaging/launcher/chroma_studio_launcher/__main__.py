"""The launcher's entry point: go straight into the app, or set it up (window or console) first.

Launcher options come before any app arguments; everything else is passed to ``chroma-studio``,
so ``ChromaStudio doctor --json`` runs the app's doctor once the environment exists.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from . import APP_NAME, __version__
from .bundle import BundleError, bundle_root, find_offline, load_bundle, offline_candidates
from .decide import TORCH_VERSION, Plan, Unsupported, allowed_backends, decide
from .detect import detect, normalize_system
from .install import InstallState, Work, installed_app_version, load_state, plan_work
from .layout import Layout, default_root
from .runner import child_environment
from .start import app_command, app_environment, start_app

LOG_FILES_KEPT = 10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ChromaStudio",
        description=f"Start {APP_NAME}, setting up its Python environment and PyTorch on first run. "
        "Arguments after the launcher's own options go to chroma-studio.",
        allow_abbrev=False,
    )
    parser.add_argument("--setup", action="store_true", help="open setup even when installed (repair, change GPU)")
    parser.add_argument("--backend", choices=["cu130", "cu126", "rocm7.2", "mps", "cpu"], help="PyTorch build")
    parser.add_argument("--reinstall", action="store_true", help="rebuild the environment from scratch")
    parser.add_argument("--wheels", type=Path, help="install from this wheel folder instead of the network")
    parser.add_argument("--python", help="Python interpreter (path or version) for the environment")
    parser.add_argument("--console", action="store_true", help="set up in the terminal, without a window")
    parser.add_argument("--auto", action="store_true", help="start setup without waiting for a click")
    parser.add_argument("--no-start", action="store_true", help="set up only; do not start the app")
    parser.add_argument("--status", action="store_true", help="print the installation state as JSON")
    parser.add_argument("--plan", action="store_true", help="print the detected hardware and the plan as JSON")
    parser.add_argument("--home", type=Path, help="where the environment lives (default: per-user app data)")
    parser.add_argument("--bundle", type=Path, help="folder with bundle.json (when not frozen)")
    parser.add_argument("--launcher-version", action="version", version=f"%(prog)s {__version__}")
    return parser


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """Launcher options up to the first positional (an app subcommand) or ``--``; the rest is the app's."""
    takes_value = {"--backend", "--wheels", "--python", "--home", "--bundle"}
    own: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return own, argv[index + 1 :]
        if not token.startswith("-"):
            break
        own.append(token)
        if token in takes_value and index + 1 < len(argv):
            own.append(argv[index + 1])
            index += 1
        index += 1
    return own, argv[index:]


def main(argv: list[str] | None = None) -> int:
    own, app_args = split_arguments(sys.argv[1:] if argv is None else argv)
    args, unknown = build_parser().parse_known_args(own)
    app_args = unknown + app_args
    system = normalize_system(sys.platform)
    frozen_dir = Path(getattr(sys, "_MEIPASS", "")) if getattr(sys, "frozen", False) else None
    layout = Layout(args.home or default_root(system, os.environ, Path.home()), system)
    log_file = LogFile(layout.logs)
    logging.basicConfig(level=logging.INFO, handlers=[_LineHandler(log_file)], force=True)
    base_env = child_environment(os.environ, str(frozen_dir) if frozen_dir else None)
    try:
        bundle = load_bundle(bundle_root(args.bundle, os.environ, frozen_dir))
    except BundleError as exc:
        return _fatal(str(exc), window=not args.console and not app_args)
    state = load_state(layout.state_file)
    installed = installed_app_version(layout)
    env_ready = layout.env_python.is_file()
    torch_pin = f"torch=={TORCH_VERSION}"
    work = plan_work(state, installed, bundle.app_version, env_ready, torch_pin, args.backend, args.reinstall)

    if args.status:
        print(json.dumps(_status(layout, bundle.app_version, installed, state, work), indent=2))
        return 0
    if work is Work.READY and not args.setup and not args.plan:
        if args.no_start:
            return 0
        replace = system != "windows" or bool(app_args)  # Windows: the GUI runs detached, the launcher exits
        return start_app(app_command(layout, app_args), app_environment(base_env, state.env), replace=replace)

    hardware = detect()
    executable = Path(sys.executable) if frozen_dir else bundle.root / "launcher"
    offline = find_offline(offline_candidates(args.wheels, os.environ, executable, system, bundle.root))
    reinstall = args.reinstall or args.setup

    def prepare(choice: str | None) -> tuple[Plan | Unsupported, Work]:
        requested = choice or args.backend
        keep = state.backend if state and work is Work.UPDATE and not requested else None
        plan = decide(hardware, override=requested or keep, offline=offline, python=args.python)
        planned = plan_work(state, installed, bundle.app_version, env_ready, torch_pin, requested, reinstall)
        return plan, planned

    if args.plan:
        plan, planned = prepare(None)
        print(json.dumps({"hardware": asdict(hardware), "work": planned.value, "plan": asdict(plan)}, indent=2))
        return 0

    setup_kwargs = {"layout": layout, "bundle": bundle, "previous": state, "base_env": base_env}

    def start(ready: InstallState, replace: bool) -> int:
        if args.no_start:
            return 0
        return start_app(app_command(layout, app_args), app_environment(base_env, ready.env), replace=replace)

    window = None
    if not args.console and _display_available(system):
        try:
            from . import window
        except ImportError as exc:  # a launcher run from a checkout without PySide6
            log_file.write(f"No setup window ({exc}); setting up in the console.")
    _release_dll_directory(frozen_dir, system)
    if window is None:
        from .console import run_console_setup

        plan, planned = prepare(None)
        if isinstance(plan, Unsupported):
            return _fatal(f"{plan.reason}\n(Detected: {plan.detected})", window=False)
        ready = run_console_setup(plan, planned, setup_kwargs, log_file.write)
        if ready is None:
            print(f"The log is in {log_file.path}", file=sys.stderr)
            return 1
        return start(ready, replace=system != "windows" or bool(app_args))
    return window.run_window(
        prepare=prepare,
        choices=allowed_backends(hardware),
        setup_kwargs=setup_kwargs,
        on_ready=lambda ready: start(ready, replace=False),
        log_file=log_file.write,
        install_dir=str(layout.root),
        auto_start=args.auto or work is Work.UPDATE,
    )


class LogFile:
    """A setup log in the launcher's folder, opened on the first line; keeps the newest few."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / time.strftime("setup-%Y%m%d-%H%M%S.log")
        self._handle = None

    def write(self, line: str) -> None:
        if self._handle is None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                for old in sorted(self.folder.glob("setup-*.log"))[:-LOG_FILES_KEPT]:
                    old.unlink(missing_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            except OSError:
                return
        self._handle.write(line + "\n")


class _LineHandler(logging.Handler):
    def __init__(self, log_file: LogFile) -> None:
        super().__init__()
        self._log_file = log_file

    def emit(self, record: logging.LogRecord) -> None:
        self._log_file.write(f"[{record.levelname.lower()}] {record.name}: {record.getMessage()}")


def _status(layout: Layout, bundled: str, installed: str | None, state: InstallState | None, work: Work) -> dict:
    return {
        "home": str(layout.root),
        "work": work.value,
        "bundled_version": bundled,
        "installed_version": installed,
        "backend": state.backend if state else None,
        "torch_version": state.torch_version if state else None,
        "python": str(layout.env_python),
    }


def _display_available(system: str) -> bool:
    if system != "linux":
        return True
    return any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _release_dll_directory(frozen_dir: Path | None, system: str) -> None:
    """Frozen on Windows, the bootloader's DLL directory would be inherited by uv and the app."""
    if frozen_dir is not None and system == "windows":
        import ctypes

        ctypes.windll.kernel32.SetDllDirectoryW(None)


def _fatal(message: str, window: bool) -> int:
    print(message, file=sys.stderr)
    if window and _display_available(normalize_system(sys.platform)):
        try:
            from PySide6.QtWidgets import QApplication, QMessageBox
        except ImportError:
            return 2
        app = QApplication.instance() or QApplication([])
        QMessageBox.critical(None, APP_NAME, message)
        del app
    return 2


if __name__ == "__main__":
    sys.exit(main())
