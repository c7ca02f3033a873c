"""The dry-run plan shows blocks streamed from RAM (with the memory model's figures) and processes."""

import json

import pytest

from chroma_studio import hardware
from chroma_studio.cli import main
from chroma_studio.config import load_config
from chroma_studio.hardware.budget import pinned_bytes
from chroma_studio.hardware.detect import DeviceInfo, MachineInfo
from chroma_studio.hardware.fitting import cost_of

GiB = 2**30


def laptop_8gb() -> MachineInfo:
    """What detection reports for an RTX 4060 Laptop (PCIe 4.0 x8) in a 32 GB machine."""
    gpu = DeviceInfo(
        "cuda",
        0,
        "NVIDIA GeForce RTX 4060 Laptop GPU",
        8 * GiB,
        int(7.5 * GiB),
        compute_capability=(8, 9),
        pcie_gen=4,
        pcie_width=8,
    )
    cpu = DeviceInfo("cpu", 0, "x86_64", 32 * GiB, 24 * GiB)
    return MachineInfo((gpu, cpu), 32 * GiB, 24 * GiB, 100 * GiB, 100 * GiB, "Linux", "3.11")


@pytest.fixture
def write_config(tmp_path, small_dataset):
    def write(**settings):
        path = tmp_path / "config.json"
        values = {"dataset_dirs": [str(small_dataset)], "output_dir": str(tmp_path / "run"), **settings}
        path.write_text(json.dumps(values))
        return path

    return write


def dry_run(path, capsys) -> tuple[dict, str]:
    assert main(["train", str(path), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert main(["train", str(path), "--dry-run"]) == 0
    return plan, capsys.readouterr().out


def test_the_plan_gives_the_streamed_blocks_pinned_ram_and_slowdown_on_the_gpu(write_config, capsys, monkeypatch):
    machine = laptop_8gb()
    monkeypatch.setattr(hardware, "detect_machine", lambda *a, **k: machine)
    monkeypatch.setenv("CHROMA_STUDIO_DEVICE", "cuda")  # the device the run would train on; nothing runs on it
    path = write_config(base_model_precision="int8-quanto", blocks_to_swap=52, gradient_checkpointing=True)
    plan, text = dry_run(path, capsys)
    config, _ = load_config(path)
    gpu = machine.devices[0]
    expected_cost = cost_of(config, gpu)
    streaming = plan["streaming"]
    assert streaming["blocks_streamed"] == 52 and streaming["blocks"] == 57
    assert streaming["pinned_ram_gb"] == round(pinned_bytes(hardware.estimate_memory(config, gpu)) / GiB, 2)
    assert streaming["pinned_ram_gb"] > 5  # 52 int8 blocks
    assert streaming["slowdown"] == round(expected_cost.slowdown, 3)
    assert streaming["bandwidth_source"] == "PCIe 4.0 x8, reported by the driver"
    assert plan["processes"] == 1 and plan["global_batch_size"] == plan["batch_size"]
    line = next(line for line in text.splitlines() if line.startswith("Streaming:"))
    assert streaming["peak_phase"] == "caching text (t5-xxl)"  # T5-XXL on the device: offload_during_startup off
    assert line.startswith(
        f"Streaming:   52 of 57 blocks from RAM (blocks_to_swap), {streaming['pinned_ram_gb']:.1f} GB of pinned RAM; "
        f"predicted peak {streaming['peak_device_gb']:.1f} GB (caching text (t5-xxl)) of 7.5 GB free on the "
        "NVIDIA GeForce RTX 4060 Laptop GPU; modelled slowdown "
    )
    assert "modelled slowdown " in line and "GB copied per step at 12.6 GB/s" in line
    assert "Processes:" not in text


def test_on_the_cpu_the_plan_says_streaming_saves_nothing(write_config, capsys, monkeypatch):
    monkeypatch.setenv("CHROMA_STUDIO_DEVICE", "cpu")
    path = write_config(model_flavour="demo", blocks_to_swap=2, gradient_checkpointing=True)
    plan, text = dry_run(path, capsys)
    assert plan["streaming"] == {
        "blocks_streamed": 2,
        "note": "Nothing is saved by streaming here: streaming needs CUDA streams (CUDA or ROCm), and the cpu has "
        "none.",
    }
    assert "Streaming:   2 blocks from RAM (blocks_to_swap). Nothing is saved by streaming here" in text


def test_without_streaming_the_plan_has_none(write_config, capsys):
    plan, text = dry_run(write_config(model_flavour="demo"), capsys)
    assert plan["streaming"] is None and "Streaming:" not in text


def test_the_plan_gives_the_processes_and_the_global_batch(write_config, capsys):
    path = write_config(model_flavour="demo", num_processes=2, train_batch_size=3)
    plan, text = dry_run(path, capsys)
    assert plan["processes"] == 2 and plan["global_batch_size"] == 6
    assert "Processes:   2, one per GPU: global batch 3 x 2 = 6 images per step" in text


def test_a_dry_run_refuses_streaming_with_several_processes(write_config, capsys):
    path = write_config(model_flavour="demo", num_processes=2, blocks_to_swap=4, gradient_checkpointing=True)
    assert main(["train", str(path), "--dry-run"]) == 2
    assert "num_processes" in capsys.readouterr().err


def test_a_dry_run_refuses_streaming_on_a_mac_as_the_run_would(write_config, capsys, monkeypatch):
    monkeypatch.setenv("CHROMA_STUDIO_DEVICE", "mps")
    path = write_config(model_flavour="demo", blocks_to_swap=4, gradient_checkpointing=True)
    assert main(["train", str(path), "--dry-run"]) == 2
    assert "does not help on a Mac" in capsys.readouterr().err
