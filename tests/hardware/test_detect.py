"""Detection with faked NVML, sysfs and Apple answers: what the app learns about the machine."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pynvml
import pytest
from fakes import FakeGpu, GiB, fake_ram

from chroma_studio.hardware import detect
from chroma_studio.hardware.detect import detect_machine, detect_nvidia, detect_rocm, free_disk, metal_working_set


@pytest.mark.parametrize(
    ("name", "total_gb"),
    [
        ("NVIDIA GeForce RTX 4060", 8),
        ("NVIDIA GeForce RTX 3060", 12),
        ("NVIDIA GeForce RTX 4080", 16),
        ("NVIDIA GeForce RTX 4090", 24),
        ("NVIDIA A100-SXM4-80GB", 80),
    ],
)
def test_nvidia_cards_are_read_through_nvml(fake_nvml, name, total_gb):
    nvml = fake_nvml(FakeGpu(name, total_gb, used_gb=1.25, capability=(8, 6)))
    [gpu] = detect_nvidia()
    assert nvml.initialised
    assert gpu.kind == "cuda" and gpu.name == name
    assert gpu.total_bytes == total_gb * GiB
    assert gpu.free_bytes == int((total_gb - 1.25) * GiB)
    assert gpu.driver == "550.54.14"
    assert gpu.cuda_driver_version == "12.4"
    assert gpu.compute_capability == (8, 6)
    assert gpu.supports_nf4 and gpu.supports_bf16


def test_names_given_as_bytes_are_decoded(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu("RTX 4090", 24))
    monkeypatch.setattr(pynvml, "nvmlDeviceGetName", lambda handle: b"NVIDIA GeForce RTX 4090")
    assert detect_nvidia()[0].name == "NVIDIA GeForce RTX 4090"


def test_pre_ampere_cards_do_not_claim_bf16(fake_nvml):
    fake_nvml(FakeGpu("Tesla T4", 16, capability=(7, 5)))
    assert not detect_nvidia()[0].supports_bf16


def test_nvml_that_fails_to_start_means_no_nvidia(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu("RTX 4090", 24))

    def broken() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", broken)
    assert detect_nvidia() == []
    machine = detect_machine()
    assert [d.kind for d in machine.devices] == ["cpu"]
    assert machine.best_device.kind == "cpu"


def test_nvml_failing_while_listing_means_no_nvidia(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu("RTX 4090", 24))

    def broken() -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", broken)
    assert detect_nvidia() == []


def test_one_unreadable_gpu_is_skipped(fake_nvml, monkeypatch):
    fake_nvml(FakeGpu("RTX 3090", 24), FakeGpu("RTX 3060", 12))
    real = pynvml.nvmlDeviceGetMemoryInfo

    def flaky(handle: int):
        if handle == 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return real(handle)

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", flaky)
    gpus = detect_nvidia()
    assert [(g.index, g.name) for g in gpus] == [(1, "RTX 3060")]


def test_missing_nvml_package_means_no_nvidia(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    assert detect_nvidia() == []


def test_best_device_is_the_largest_gpu(fake_nvml):
    fake_nvml(FakeGpu("RTX 3060", 12), FakeGpu("RTX 4090", 24), ram_gb=32)
    machine = detect_machine()
    assert machine.best_device.name == "RTX 4090"
    assert machine.ram_total == 32 * GiB and machine.ram_available == 24 * GiB
    assert [d.kind for d in machine.devices] == ["cuda", "cuda", "cpu"]


def _amd_card(root: Path, card: str, vendor: str, total: int, used: int = 0, name: str | None = None) -> None:
    device = root / card / "device"
    device.mkdir(parents=True)
    (device / "vendor").write_text(vendor + "\n")
    (device / "mem_info_vram_total").write_text(f"{total}\n")
    (device / "mem_info_vram_used").write_text(f"{used}\n")
    if name:
        (device / "product_name").write_text(name + "\n")


def test_amd_gpus_are_read_from_sysfs_without_torch(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    _amd_card(tmp_path, "card0", "0x1002", 24 * GiB, used=2 * GiB, name="Radeon RX 7900 XTX")
    _amd_card(tmp_path, "card1", "0x1002", 512 * 2**20)  # an APU's carve-out, not a GPU to train on
    _amd_card(tmp_path, "card2", "0x10de", 8 * GiB)  # not AMD
    (tmp_path / "card0-DP-1").mkdir()  # a connector
    [gpu] = detect_rocm(tmp_path)
    assert gpu.kind == "rocm" and gpu.name == "Radeon RX 7900 XTX"
    assert gpu.total_bytes == 24 * GiB and gpu.free_bytes == 22 * GiB
    assert not gpu.supports_nf4


def test_rocm_asks_torch_only_when_it_is_already_loaded(tmp_path, monkeypatch):
    props = types.SimpleNamespace(total_memory=16 * GiB, name="AMD Radeon PRO W7600")
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 1,
        get_device_properties=lambda i: props,
        is_initialized=lambda: False,
    )
    fake_torch = types.SimpleNamespace(version=types.SimpleNamespace(hip="6.2.4", cuda=None), cuda=cuda)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    [gpu] = detect_rocm(tmp_path)  # sysfs is empty: the answer came from torch
    assert (gpu.kind, gpu.name, gpu.total_bytes, gpu.driver) == ("rocm", "AMD Radeon PRO W7600", 16 * GiB, "HIP 6.2.4")


@pytest.mark.parametrize(("ram_gb", "fraction"), [(16, 2 / 3), (32, 2 / 3), (64, 3 / 4), (128, 3 / 4)])
def test_metal_working_set_rule(monkeypatch, ram_gb, fraction):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert metal_working_set(ram_gb * GiB) == int(ram_gb * GiB * fraction)


@pytest.mark.parametrize("ram_gb", [16, 64])
def test_apple_silicon_is_an_mps_device_with_unified_memory(monkeypatch, ram_gb):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(detect, "is_apple_silicon", lambda: True)
    monkeypatch.setattr(detect, "_apple_chip_name", lambda: "Apple M3 Pro")
    monkeypatch.setattr(detect, "detect_nvidia", lambda: [])
    fake_ram(monkeypatch, ram_gb, available_fraction=0.5)
    machine = detect_machine()
    mps = machine.best_device
    assert mps.kind == "mps" and mps.unified_memory and mps.name == "Apple M3 Pro"
    assert mps.total_bytes == metal_working_set(ram_gb * GiB)
    assert mps.free_bytes == min(mps.total_bytes, ram_gb * GiB // 2)
    assert not mps.supports_nf4


def test_not_apple_silicon_on_linux():
    if sys.platform == "darwin":
        pytest.skip("runs on Linux and Windows")
    assert detect.detect_mps(16 * GiB, 8 * GiB) == []


def test_free_disk_looks_at_the_nearest_existing_folder(tmp_path):
    assert free_disk(tmp_path / "not" / "yet" / "made") == free_disk(tmp_path) > 0
    assert free_disk(None) is None


def test_machine_reports_disk_and_to_dict(fake_nvml, tmp_path):
    fake_nvml(FakeGpu("RTX 4090", 24))
    machine = detect_machine(tmp_path / "run")
    data = machine.to_dict()
    assert data["disk_free_output"] > 0 and data["disk_free_cache"] is not None
    assert data["devices"][0]["name"] == "RTX 4090"
    assert data["output_dir"] == str(tmp_path / "run")


def test_detection_never_imports_torch():
    """The GUI detects hardware at start-up; torch (and a CUDA context) must not come with it."""
    code = "import sys; from chroma_studio.hardware import detect_machine, recommend; recommend(detect_machine());"
    code += "print(sorted(m for m in ('torch', 'diffusers', 'PySide6') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
