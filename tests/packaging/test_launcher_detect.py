"""Hardware probes on recorded outputs and a fake /sys tree (no GPU needed)."""

from __future__ import annotations

from pathlib import Path

from chroma_studio_launcher.decide import AmdGpu, NvidiaGpu
from chroma_studio_launcher.detect import (
    detect,
    gfx_name,
    parse_kfd_properties,
    parse_nvidia_smi,
    parse_rocminfo,
    parse_video_controllers,
)


def test_nvidia_smi_rows_with_and_without_compute_capability():
    text = "NVIDIA GeForce RTX 4090, 580.65.06, 24564, 8.9\nNVIDIA GeForce GTX 1080, 470.256.02, 8192\n"
    assert parse_nvidia_smi(text) == [
        NvidiaGpu("NVIDIA GeForce RTX 4090", (580, 65, 6), (8, 9), 24564),
        NvidiaGpu("NVIDIA GeForce GTX 1080", (470, 256, 2), None, 8192),
    ]
    assert parse_nvidia_smi("No devices were found\n") == []


def test_kfd_target_versions_name_the_architecture():
    assert [gfx_name(v) for v in (110000, 90010, 100300, 90402, 110501, 120001)] == [
        "gfx1100",
        "gfx90a",
        "gfx1030",
        "gfx942",
        "gfx1151",
        "gfx1201",
    ]
    cpu_node = "cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n"
    gpu_node = "cpu_cores_count 0\nsimd_count 192\ngfx_target_version 110000\nvendor_id 4098\n"
    assert parse_kfd_properties([cpu_node, gpu_node]) == ["gfx1100"]


def test_rocminfo_agents():
    text = """
*******
Agent 1
  Name:                    AMD Ryzen 9 7950X 16-Core Processor
  Marketing Name:          AMD Ryzen 9 7950X 16-Core Processor
*******
Agent 2
  Name:                    gfx1100
  Uuid:                    GPU-1234
  Marketing Name:          Radeon RX 7900 XTX
"""
    assert parse_rocminfo(text) == [AmdGpu("Radeon RX 7900 XTX", "gfx1100")]


def test_windows_video_controllers_sorted_by_vendor():
    text = (
        "Advanced Micro Devices, Inc.|AMD Radeon RX 7800 XT\n"
        "NVIDIA|NVIDIA GeForce RTX 3060\n"
        "Intel Corporation|Intel(R) UHD Graphics 770\n"
        "Microsoft|Microsoft Basic Display Adapter\n"
    )
    assert parse_video_controllers(text) == {
        "nvidia": ["NVIDIA GeForce RTX 3060"],
        "amd": ["AMD Radeon RX 7800 XT"],
        "other": ["Intel(R) UHD Graphics 770"],
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_linux_amd_gpu_from_sysfs_and_kfd(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("chroma_studio_launcher.detect.probe_nvml", lambda notes: [])
    _write(tmp_path / "sys/class/drm/card1/device/vendor", "0x1002\n")
    _write(tmp_path / "sys/class/drm/card1/device/product_name", "Radeon RX 7900 XTX\n")
    _write(tmp_path / "sys/class/kfd/kfd/topology/nodes/0/properties", "gfx_target_version 0\n")
    _write(tmp_path / "sys/class/kfd/kfd/topology/nodes/1/properties", "gfx_target_version 110000\n")
    _write(tmp_path / "dev/kfd", "")
    _write(tmp_path / "opt/rocm/.info/version", "7.2.0-1\n")
    hardware = detect(sys_root=tmp_path, run=lambda argv: None)
    assert hardware.amd == (AmdGpu("Radeon RX 7900 XTX", "gfx1100"),)
    assert hardware.amd_compute_driver
    assert hardware.rocm_version == "7.2.0-1"
    assert hardware.nvidia == ()


def test_linux_nvidia_card_without_driver_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("chroma_studio_launcher.detect.probe_nvml", lambda notes: [])
    _write(tmp_path / "sys/class/drm/card0/device/vendor", "0x10de\n")
    hardware = detect(sys_root=tmp_path, run=lambda argv: None)
    assert hardware.nvidia == (NvidiaGpu("NVIDIA GPU", None),)


def test_linux_nvidia_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setattr("chroma_studio_launcher.detect.probe_nvml", lambda notes: [])

    def run(argv):
        return "NVIDIA RTX A6000, 580.95.05, 49140, 8.6" if "nvidia-smi" in argv[0] else None

    hardware = detect(sys_root=tmp_path, run=run)
    assert hardware.nvidia == (NvidiaGpu("NVIDIA RTX A6000", (580, 95, 5), (8, 6), 49140),)
