"""``chroma-studio doctor`` and ``chroma-studio estimate``, human and JSON output."""

from __future__ import annotations

import json

import pytest
from fakes import FakeGpu

from chroma_studio.cli import main


def test_doctor_prints_the_machine_the_settings_and_why(fake_nvml, tmp_path, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4090", 24), ram_gb=64)
    assert main(["doctor", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA GeForce RTX 4090: 24.0 GB, 23.5 GB free (driver 550.54.14, CUDA 12.4, compute 8.9)" in out
    assert "RAM:     64.0 GB, 48.0 GB available" in out
    assert "Recommended settings" in out
    assert 'base_model_precision: "no_change"' in out
    assert "preset for this class of machine: gpu-24gb" in out
    assert "Why" in out and "Predicted peak:" in out


def test_doctor_json(fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 3060", 12), ram_gb=32)
    assert main(["doctor", "--json", "--resolution", "768"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machine"]["devices"][0]["name"] == "NVIDIA GeForce RTX 3060"
    assert data["recommendation"]["fits"] is True
    assert data["recommendation"]["settings"]["resolution"] == 768
    assert data["recommendation"]["reasons"]
    assert data["preset"] == "gpu-12gb"


def test_doctor_on_a_machine_without_gpu(fake_nvml, capsys):
    fake_nvml(ram_gb=16)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "No setting of the real model fits" in out
    assert 'model_flavour: "demo"' in out and "not practical" in out


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_family": "chroma",
                "network_rank": 16,
                "base_model_precision": "int8-quanto",
                "resolution": 1024,
                "gradient_checkpointing": True,
                "dataset_dirs": ["images"],
            }
        )
    )
    return path


def test_estimate_json_has_peaks_and_breakdown(config_file, capsys):
    assert main(["estimate", str(config_file), "--json", "--device", "cuda", "--device-memory", "16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 12 < data["peak_device_gb"] < 14
    assert data["peak_host_gb"] > 0
    assert set(data["breakdown"]) == {"caching_text", "caching_images", "loading", "training", "sampling"}
    assert "transformer weights (int8)" in data["breakdown"]["training"]["parts"]
    assert data["device_memory_gb"] == 16 and data["fits"] is True


def test_estimate_human_says_whether_it_fits(config_file, capsys):
    assert main(["estimate", str(config_file), "--device", "cuda", "--device-memory", "12"]) == 0
    out = capsys.readouterr().out
    assert "Peak device memory:" in out and "(Training)" in out
    assert "Does not fit in 12.0 GB" in out
    assert "transformer weights (int8)" in out


def test_estimate_uses_the_detected_device(config_file, fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4080", 16, used_gb=0.5))
    assert main(["estimate", str(config_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["device"] == "cuda" and data["device_memory_gb"] == 15.5 and data["fits"] is True


def test_estimate_reports_config_errors(tmp_path, capsys):
    assert main(["estimate", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lora_rnak": 16}))
    assert main(["estimate", str(bad)]) == 2
    assert "lora_rnak" in capsys.readouterr().err


def test_doctor_shows_the_blocks_it_streams_the_pinned_ram_and_the_slowdown(fake_nvml, tmp_path, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4060 Laptop GPU", 8, used_gb=0.5, pcie=(4, 8)), ram_gb=16)
    assert main(["doctor", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PCIe 4.0 x8" in out
    assert "Streaming frozen blocks from RAM" in out
    blocks = int(out.split("blocks_to_swap: ")[1].split()[0])
    assert f"Blocks streamed:    {blocks} of 57 (blocks_to_swap)" in out
    assert "Pinned RAM:" in out
    assert "Modelled slowdown:  under 1% (" in out and "12.6 GB/s, PCIe 4.0 x8, reported by the driver" in out
    assert f"Streams {blocks} of 57 blocks from RAM" in out  # the reason, in one sentence


def test_doctor_json_has_the_streaming_figures(fake_nvml, capsys):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4050 Laptop GPU", 8), ram_gb=32)
    assert main(["doctor", "--json"]) == 0
    streaming = json.loads(capsys.readouterr().out)["recommendation"]["streaming"]
    assert streaming["blocks_streamed"] > 0 and streaming["pinned_ram_gb"] > 0
    assert 0 <= streaming["slowdown"] < 0.05 and streaming["compute_s_per_step"] > 0


def test_estimate_with_blocks_to_swap(config_file, capsys):
    settings = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**settings, "offload_during_startup": True}))  # T5 streams while caching
    assert main(["estimate", str(config_file), "--json", "--device", "cuda", "--device-memory", "7.5"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole["streaming"] is None and whole["fits"] is False
    args = ["estimate", str(config_file), "--json", "--device", "cuda", "--device-memory", "7.5"]
    assert main([*args, "--blocks-to-swap", "52"]) == 0
    streamed = json.loads(capsys.readouterr().out)
    assert streamed["fits"] is True
    assert streamed["streaming"]["blocks_streamed"] == 52
    pinned = streamed["breakdown"]["training"]["parts"]["streamed blocks in pinned RAM (52 of 57)"]
    assert pinned["host_gb"] == pytest.approx(streamed["streaming"]["pinned_ram_gb"], abs=0.01)
    assert whole["peak_device_gb"] - streamed["peak_device_gb"] == pytest.approx(pinned["host_gb"], rel=0.15)


def test_estimate_prints_the_streaming_and_refuses_a_bad_count(config_file, capsys):
    assert main(["estimate", str(config_file), "--device", "cuda", "--blocks-to-swap", "40"]) == 0
    out = capsys.readouterr().out
    assert "Streaming: 40 of 57 blocks from RAM (blocks_to_swap)" in out
    assert "Modelled slowdown:" in out and "streaming buffers (2 blocks)" not in out.split("Breakdown")[0]
    assert main(["estimate", str(config_file), "--device", "mps", "--blocks-to-swap", "40"]) == 0
    out = capsys.readouterr().out
    assert "Streaming:" not in out and "blocks_to_swap 40 is not counted" in out
    assert main(["estimate", str(config_file), "--device", "cuda", "--blocks-to-swap", "58"]) == 2
    assert "--blocks-to-swap 58: choose 0 to 57 blocks." in capsys.readouterr().err
