"""Setup without running anything real: work decisions, commands, device check, environment."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from chroma_studio_launcher.bundle import Bundle, find_offline, load_bundle, offline_candidates
from chroma_studio_launcher.decide import TORCH_VERSION, Hardware, NvidiaGpu, Plan, decide
from chroma_studio_launcher.install import (
    DEVICE_CHECK_MARKER,
    InstallState,
    SetupError,
    Work,
    build_steps,
    installed_app_version,
    load_state,
    plan_work,
    read_device_check,
    run_setup,
    uv_environment,
)
from chroma_studio_launcher.layout import Layout, default_root
from chroma_studio_launcher.runner import CANCELLED, child_environment, run_command

PIN = f"torch=={TORCH_VERSION}"


def state(**kw) -> InstallState:
    values = {"app_version": "0.1.0", "backend": "cu130", "torch": PIN, "torch_version": f"{TORCH_VERSION}+cu130"}
    values.update(kw)
    values.setdefault("python", "3.12")
    return InstallState(**values)


def cuda_plan(**kw) -> Plan:
    plan = decide(Hardware("linux", "x86_64", nvidia=(NvidiaGpu("RTX", (580, 1), (8, 9)),)), **kw)
    assert isinstance(plan, Plan)
    return plan


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, Work.READY),
        ({"state": None}, Work.INSTALL),
        ({"env_ready": False}, Work.INSTALL),
        ({"installed": None}, Work.INSTALL),
        ({"reinstall": True}, Work.INSTALL),
        ({"requested": "cpu"}, Work.INSTALL),
        ({"requested": "cu130"}, Work.READY),
        ({"bundled": "0.2.0"}, Work.UPDATE),
        ({"installed": "0.0.9"}, Work.UPDATE),
        ({"state": state(torch="torch==2.12.0")}, Work.UPDATE),
    ],
)
def test_plan_work(kwargs, expected):
    args = {"state": state(), "installed": "0.1.0", "bundled": "0.1.0", "env_ready": True}
    args.update(kwargs)
    work = plan_work(
        args["state"],
        args["installed"],
        args["bundled"],
        args["env_ready"],
        PIN,
        requested_backend=args.get("requested"),
        reinstall=args.get("reinstall", False),
    )
    assert work is expected


def bundle(tmp_path: Path) -> Bundle:
    return Bundle(tmp_path, tmp_path / "uv", tmp_path / "app" / "chroma_studio-0.2.0-py3-none-any.whl", "0.2.0")


def test_first_install_commands(tmp_path):
    layout = Layout(tmp_path / "home", "linux")
    steps = build_steps(Work.INSTALL, cuda_plan(), layout, bundle(tmp_path), torch_changed=True)
    assert [s.key for s in steps] == ["venv", "torch", "app", "check"]
    venv, torch, app, check = (s.argv for s in steps)
    assert venv[:3] == (str(tmp_path / "uv"), "venv", str(layout.env))
    assert venv[4:6] == ("--python", "3.12") and "--managed-python" in venv and "--clear" in venv
    assert torch[-3:] == (PIN, "--index-url", "https://download.pytorch.org/whl/cu130")
    assert str(layout.env_python) in torch
    assert str(bundle(tmp_path).app_wheel) in app and "--constraints" in app
    assert "--index-url" not in app  # everything else comes from PyPI
    assert check[0] == str(layout.env_python) and check[-1] == "cuda"


def test_update_reuses_the_environment_and_keeps_torch(tmp_path):
    layout = Layout(tmp_path, "windows")
    steps = build_steps(Work.UPDATE, cuda_plan(), layout, bundle(tmp_path), torch_changed=False)
    assert [s.key for s in steps] == ["app", "check"]
    assert steps[0].argv[4] == str(tmp_path / "env" / "Scripts" / "python.exe")
    moved = build_steps(Work.UPDATE, cuda_plan(), layout, bundle(tmp_path), torch_changed=True)
    assert [s.key for s in moved] == ["torch", "app", "check"]
    assert "--reinstall-package" in moved[0].argv


def test_offline_commands_never_touch_an_index(tmp_path):
    from chroma_studio_launcher.decide import OfflineFolder

    wheel = f"torch-{TORCH_VERSION}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    plan = decide(Hardware("linux", "x86_64"), offline=OfflineFolder(str(tmp_path / "w"), (wheel,)))
    assert isinstance(plan, Plan)
    steps = build_steps(Work.INSTALL, plan, Layout(tmp_path, "linux"), bundle(tmp_path), torch_changed=True)
    for step in steps[1:3]:
        assert "--no-index" in step.argv and "--find-links" in step.argv and "--index-url" not in step.argv
    assert "--no-python-downloads" in steps[0].argv and "--managed-python" not in steps[0].argv
    assert uv_environment({}, Layout(tmp_path, "linux"), plan)["UV_OFFLINE"] == "1"


def test_uv_environment_is_private_and_drops_foreign_uv_settings(tmp_path):
    layout = Layout(tmp_path, "linux")
    base = {"PATH": "/usr/bin", "UV_INDEX_STRATEGY": "unsafe-best-match", "UV_NATIVE_TLS": "1"}
    env = uv_environment(base, layout, cuda_plan())
    assert env["UV_CACHE_DIR"] == str(layout.uv_cache)
    assert env["UV_PYTHON_INSTALL_DIR"] == str(layout.python_dir)
    assert env["UV_NO_CONFIG"] == "1"
    assert "UV_INDEX_STRATEGY" not in env and env["UV_NATIVE_TLS"] == "1" and env["PATH"] == "/usr/bin"


def check_output(**info) -> str:
    return "noise\n" + DEVICE_CHECK_MARKER + " " + json.dumps(info) + "\n"


def test_device_check_report():
    plan = cuda_plan()
    info, problem = read_device_check(check_output(torch=f"{TORCH_VERSION}+cu130", sum=4.0, name="RTX"), plan)
    assert problem is None and info["name"] == "RTX"
    _, problem = read_device_check(check_output(torch=f"{TORCH_VERSION}+cpu", sum=4.0), plan)
    assert "+cu130" in problem
    _, problem = read_device_check(check_output(torch="2.14.1+cu130", sum=4.0), plan)
    assert "2.14.1" in problem
    _, problem = read_device_check("RuntimeError: no CUDA GPUs are available", plan)
    assert "CUDA" in problem


class FakeRunner:
    """Records the commands; answers the device check with ``report``."""

    def __init__(self, report: str, fail: str | None = None):
        self.report = report
        self.fail = fail
        self.commands: list[list[str]] = []

    def __call__(self, argv, env, on_line, cancel, timeout):
        self.commands.append(argv)
        if self.fail and self.fail in argv:
            on_line("error: network unreachable")
            return 2
        if argv[1] == "-c":
            on_line(self.report.strip())
        return 0


def test_run_setup_saves_the_state_and_logs_every_command(tmp_path):
    layout = Layout(tmp_path / "home", "linux")
    runner = FakeRunner(check_output(torch=f"{TORCH_VERSION}+cu130", sum=4.0, name="RTX"))
    lines, progress = [], []
    result = run_setup(
        cuda_plan(),
        Work.INSTALL,
        layout,
        bundle(tmp_path),
        log=lines.append,
        progress=lambda d, t, s: progress.append((d, t, s)),
        cancel=threading.Event(),
        base_env={},
        runner=runner,
    )
    assert result.backend == "cu130" and result.app_version == "0.2.0"
    assert load_state(layout.state_file) == result
    assert len(runner.commands) == 4
    assert progress[-1] == (100, 100, "Ready")
    assert layout.constraints.read_text() == PIN + "\n"
    assert any(line.startswith("$ ") and "venv" in line for line in lines)


def test_run_setup_failure_gives_a_hint_and_saves_nothing(tmp_path):
    layout = Layout(tmp_path / "home", "linux")
    runner = FakeRunner("", fail=PIN)
    lines: list[str] = []
    with pytest.raises(SetupError, match="Downloading PyTorch failed"):
        run_setup(
            cuda_plan(),
            Work.INSTALL,
            layout,
            bundle(tmp_path),
            lines.append,
            lambda *a: None,
            threading.Event(),
            base_env={},
            runner=runner,
        )
    assert not layout.state_file.exists()
    assert "error: network unreachable" in lines


def test_installed_version_comes_from_the_dist_info(tmp_path):
    layout = Layout(tmp_path, "linux")
    assert installed_app_version(layout) is None
    (tmp_path / "env/lib/python3.12/site-packages/chroma_studio-0.3.1.dist-info").mkdir(parents=True)
    assert installed_app_version(layout) == "0.3.1"


def test_default_homes_per_system(tmp_path):
    home = Path("/home/u")
    assert default_root("linux", {}, home) == home / ".local/share/chroma-studio"
    assert default_root("linux", {"XDG_DATA_HOME": "/x"}, home) == Path("/x/chroma-studio")
    assert default_root("darwin", {}, home) == home / "Library/Application Support/ChromaStudio"
    assert default_root("windows", {"LOCALAPPDATA": "C:/Users/u/AppData/Local"}, home) == Path(
        "C:/Users/u/AppData/Local/ChromaStudio"
    )
    assert default_root("linux", {"CHROMA_STUDIO_HOME": str(tmp_path)}, home) == tmp_path


def test_bundle_manifest_and_offline_folder(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "chroma_studio-0.2.0-py3-none-any.whl").write_text("")
    (tmp_path / "uv").write_text("")
    manifest = {"uv": "uv", "app_wheel": "app/chroma_studio-0.2.0-py3-none-any.whl", "app_version": "0.2.0"}
    (tmp_path / "bundle.json").write_text(json.dumps(manifest))
    assert load_bundle(tmp_path).app_version == "0.2.0"
    executable = tmp_path / "chroma-studio"
    assert find_offline(offline_candidates(None, {}, executable, "linux", tmp_path)) is None
    (tmp_path / "wheels" / "python").mkdir(parents=True)
    (tmp_path / "wheels" / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_text("")
    found = find_offline(offline_candidates(None, {}, executable, "linux", tmp_path))
    assert found is not None and found.python_mirror and len(found.files) == 1
    app = tmp_path / "Volume" / "Chroma Studio.app" / "Contents" / "MacOS" / "ChromaStudio"
    assert tmp_path / "Volume" / "wheels" in offline_candidates(None, {}, app, "darwin", None)


def test_child_environment_drops_the_frozen_launchers_paths(tmp_path):
    frozen = str(tmp_path / "_internal")
    environ = {
        "LD_LIBRARY_PATH": f"{frozen}:/opt/lib",
        "LD_LIBRARY_PATH_ORIG": "/opt/lib",
        "QT_PLUGIN_PATH": f"{frozen}/PySide6/Qt/plugins",
        "PATH": f"{frozen}:/usr/bin",
        "_PYI_ARCHIVE_FILE": "x",
        "PYTHONPATH": "/elsewhere",
        "HOME": "/home/u",
    }
    env = child_environment(environ, frozen)
    assert env == {"LD_LIBRARY_PATH": "/opt/lib", "PATH": "/usr/bin", "HOME": "/home/u"}


def test_run_command_streams_lines_and_can_be_cancelled():
    lines: list[str] = []
    code = run_command([sys.executable, "-c", "print('one'); print('two')"], {}, lines.append, threading.Event())
    assert (code, lines) == (0, ["one", "two"])
    cancel = threading.Event()
    cancel.set()
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    assert run_command(slow, {}, lines.append, cancel) == CANCELLED
