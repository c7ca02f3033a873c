"""``packaging/install_torch.py``: the launcher's decision picks the PyTorch index for a pip install,
and an index that cannot be reached falls back to the default one. Nothing here downloads."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from chroma_studio_launcher.decide import SUPPORTED_PYTHONS, TORCH_VERSION, Hardware, NvidiaGpu

SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "install_torch.py"
PYTORCH = "https://download.pytorch.org/whl"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once


def load_script():
    spec = importlib.util.spec_from_file_location("install_torch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script(monkeypatch):
    module = load_script()
    monkeypatch.setattr(module, "probe", lambda index, timeout=0: None)  # every index answers
    monkeypatch.setattr(module, "installed_torch", lambda: f"{TORCH_VERSION}+test")
    return module


class FakePip:
    """Records pip commands; answers with the exit statuses given, in order."""

    def __init__(self, *codes: int, output: str = ""):
        self.codes = list(codes)
        self.output = output
        self.calls: list[tuple[list[str], bool]] = []

    def __call__(self, command, capture):
        self.calls.append((list(command), capture))
        return self.codes.pop(0), self.output

    def index(self, call: int) -> str | None:
        command = self.calls[call][0]
        return command[command.index("--index-url") + 1] if "--index-url" in command else None


def test_no_nvidia_gpu_installs_the_cpu_build_from_its_index(script, capsys):
    pip = FakePip(0)
    assert script.main([], hardware=Hardware("linux", "x86_64"), run=pip) == 0
    [(command, capture)] = pip.calls
    assert command[:5] == [sys.executable, "-m", "pip", "install", f"torch=={TORCH_VERSION}"]
    assert pip.index(0) == f"{PYTORCH}/cpu" and not capture
    out = capsys.readouterr().out
    assert "no GPU found" in out and "CPU only" in out and f"torch {TORCH_VERSION}+test" in out


def test_nvidia_with_a_new_driver_installs_the_cuda_13_build(script):
    gpu = NvidiaGpu("NVIDIA GeForce RTX 4070 Laptop GPU", (580, 65, 6), (8, 9), 8188)
    pip = FakePip(0)
    assert script.main(["--dry-run"], hardware=Hardware("linux", "x86_64", nvidia=(gpu,)), run=pip) == 0
    assert pip.index(0) == f"{PYTORCH}/cu130"
    assert pip.calls[0][0][-2:] == ["--dry-run", "--ignore-installed"]


def test_backend_chosen_by_the_user_and_a_mirror(script):
    pip = FakePip(0)
    argv = ["--backend", "cu126", "--index-url", "https://mirror.example/whl/cu126"]
    assert script.main(argv, hardware=Hardware("linux", "x86_64"), run=pip) == 0
    assert pip.index(0) == "https://mirror.example/whl/cu126"


def test_mac_installs_from_the_default_index(script):
    pip = FakePip(0)
    assert script.main([], hardware=Hardware("darwin", "arm64", os_version=(14, 5)), run=pip) == 0
    assert pip.index(0) is None and len(pip.calls) == 1


def test_unreachable_index_says_so_in_one_line_and_uses_the_default_index(script, capsys):
    script.probe = lambda index, timeout=0: "[Errno -2] Name or service not known"
    pip = FakePip(1, 0, output="ERROR: No matching distribution found for torch")
    assert script.main([], hardware=Hardware("linux", "x86_64"), run=pip) == 0
    assert [pip.index(0), pip.index(1)] == [f"{PYTORCH}/cpu", None]
    assert [capture for _, capture in pip.calls] == [True, False]  # the failed try stays quiet
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be reached" in err[0] and "default package index" in err[0]
    assert "on Linux that is the CUDA 13.0 build" in err[0]


@pytest.mark.parametrize(
    ("backend", "system", "warned"),
    [("cpu", "linux", True), ("rocm7.2", "linux", True), ("cu130", "linux", False), ("cpu", "windows", False)],
)
def test_the_fallback_names_the_default_index_build_only_when_it_differs(backend, system, warned):
    assert bool(load_script().default_index_caveat(backend, system)) == warned


def test_unreachable_index_but_pip_finds_the_build_elsewhere(script, capsys):
    script.probe = lambda index, timeout=0: "timed out"
    pip = FakePip(
        0, output="WARNING: Retrying (Retry(total=0)) after connection broken\nSuccessfully installed torch\n"
    )
    assert script.main([], hardware=Hardware("linux", "x86_64"), run=pip) == 0
    assert len(pip.calls) == 1
    out = capsys.readouterr().out
    assert "Successfully installed torch" in out and "Retrying" not in out and "did not answer" in out


def test_failure_at_a_reachable_index_falls_back_too(script, capsys):
    pip = FakePip(1, 1)
    assert script.main([], hardware=Hardware("linux", "x86_64"), run=pip) == 1
    assert [pip.index(0), pip.index(1)] == [f"{PYTORCH}/cpu", None]
    assert "pip failed" in capsys.readouterr().err


def test_intel_mac_is_refused_before_pip_runs(script, capsys):
    pip = FakePip()
    assert script.main([], hardware=Hardware("darwin", "x86_64"), run=pip) == 1
    assert not pip.calls and "Intel Mac" in capsys.readouterr().err


@pytest.mark.parametrize(("version", "ok"), [((3, 9), False), ((3, 10), True), ((3, 13), True), ((3, 14), False)])
def test_supported_pythons(version, ok):
    problem = load_script().python_problem(version)
    assert (problem is None) == ok
    if problem:
        assert "3.10 to 3.13" in problem and f"{version[0]}.{version[1]}" in problem


def test_the_script_the_launcher_and_pyproject_support_the_same_pythons():
    tomllib = pytest.importorskip("tomllib")
    supported = [tuple(map(int, v.split("."))) for v in SUPPORTED_PYTHONS]
    script = load_script()
    assert (supported[0], supported[-1]) == (script.LOWEST_PYTHON, script.HIGHEST_PYTHON)
    pyproject = tomllib.loads((SCRIPT.parents[1] / "pyproject.toml").read_text())
    low, high = supported[0], (supported[-1][0], supported[-1][1] + 1)
    assert pyproject["project"]["requires-python"] == f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"


def test_probe_of_a_closed_port_fails_fast():
    assert load_script().probe(UNREACHABLE, timeout=5)


def _fake_torch_index(root: Path) -> Path:
    """A default index (PEP 503, on disk) holding a metadata-only torch wheel."""
    folder = root / "simple" / "torch"
    folder.mkdir(parents=True)
    wheel = folder / f"torch-{TORCH_VERSION}-py3-none-any.whl"
    info = f"torch-{TORCH_VERSION}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {TORCH_VERSION}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    (folder / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    return root / "simple"


@pytest.mark.skipif(sys.platform == "darwin", reason="the CPU build comes from the default index on macOS")
def test_real_pip_falls_back_from_an_unreachable_index(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and "proxy" not in k.lower()}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": _fake_torch_index(tmp_path).as_uri(),
        "PIP_NO_CACHE_DIR": "1",
    }
    argv = [sys.executable, str(SCRIPT), "--backend", "cpu", "--index-url", UNREACHABLE, "--dry-run"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    fallback = [line for line in done.stderr.splitlines() if "did not work" in line]
    assert len(fallback) == 1 and UNREACHABLE in fallback[0] and "could not be reached" in fallback[0]
    assert f"Would install torch-{TORCH_VERSION}" in done.stdout
