"""The window's machine summary from faked detection (the hardware boundary)."""

from chroma_studio.gui import hardware_adapter
from chroma_studio.hardware import detect

GiB = 2**30


def test_a_64_gb_mac_is_offered_the_64_gb_mac_preset(monkeypatch):
    mac = detect.DeviceInfo("mps", 0, "Apple M3 Max", total_bytes=48 * GiB, free_bytes=40 * GiB, unified_memory=True)
    machine = detect.MachineInfo(
        devices=(mac,),
        ram_total=64 * GiB,
        ram_available=50 * GiB,
        disk_free_output=500 * GiB,
        disk_free_cache=500 * GiB,
        os="macOS 15",
        python="3.11",
    )
    monkeypatch.setattr(detect, "detect_machine", lambda output_dir=None: machine)
    summary = hardware_adapter.summarize()
    fitting = {p.key for p in summary.presets if p.fits}
    assert "mac-64gb" in fitting  # matched by its 64 GB of RAM, not its 48 GB Metal working set
    assert not any(key.startswith(("gpu-", "nvidia-")) for key in fitting)
