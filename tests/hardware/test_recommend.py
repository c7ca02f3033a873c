"""Recommendations for faked machines: each must fit by the memory model and say why."""

from __future__ import annotations

import pytest
from fakes import FakeGpu, GiB, cpu_machine, gpu_machine, mac_machine

from chroma_studio.config import TrainingConfig, errors
from chroma_studio.hardware import detect_machine, estimate_memory, recommend
from chroma_studio.hardware.recommend import Budget, target_resolution


def assert_fits(recommendation, machine) -> None:
    config = TrainingConfig().replace(**recommendation.settings)
    assert not errors(config.validate())
    estimate = estimate_memory(config, recommendation.device)
    budget = Budget.of(machine, recommendation.device)
    assert recommendation.fits
    assert budget.shortfall(estimate) == 0
    assert estimate.peak_device_bytes <= recommendation.device.free_bytes * 0.9
    assert recommendation.peak_device_bytes == estimate.peak_device_bytes


@pytest.mark.parametrize(
    ("total_gb", "precision", "resolution"),
    [
        (8, "nf4-bnb", 512),
        (12, "int4-quanto", 1024),
        (16, "int8-quanto", 1024),
        (24, "no_change", 1024),
        (80, "no_change", 1024),
    ],
)
def test_nvidia_cards_get_the_best_setting_that_fits(total_gb, precision, resolution):
    machine = gpu_machine("cuda", total_gb)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    assert recommendation.settings["base_model_precision"] == precision
    assert recommendation.settings["resolution"] == resolution
    assert recommendation.settings["mixed_precision"] == "bf16"
    assert any("GB free" in reason for reason in recommendation.reasons)
    assert recommendation.reasons[-1].startswith("Predicted peak:")


def test_the_reason_names_the_better_setting_and_its_need():
    recommendation = recommend(gpu_machine("cuda", 16))
    better = estimate_memory(
        TrainingConfig().replace(
            **{**recommendation.settings, "base_model_precision": "no_change", "offload_during_startup": True}
        ),
        "cuda",
    )
    expected = f"int8: bf16 needs {better.peak_device_bytes / GiB:.1f} GB at 1024 px, you have 15.5 GB free."
    assert expected in recommendation.reasons


def test_an_80_gb_card_spends_its_room_on_the_batch():
    recommendation = recommend(gpu_machine("cuda", 80))
    assert recommendation.settings["train_batch_size"] > 1
    smaller = recommend(gpu_machine("cuda", 24))
    assert smaller.settings["train_batch_size"] == 1


def test_low_vram_cards_stream_t5_during_startup():
    assert recommend(gpu_machine("cuda", 8)).settings["offload_during_startup"] is True
    assert recommend(gpu_machine("cuda", 24)).settings["offload_during_startup"] is False


def test_cards_busy_with_other_programs_get_less():
    idle = recommend(gpu_machine("cuda", 24, free_gb=23.5))
    busy = recommend(gpu_machine("cuda", 24, free_gb=15))
    assert idle.settings["base_model_precision"] == "no_change"
    assert busy.settings["base_model_precision"] == "int8-quanto"


def test_old_nvidia_cards_train_in_fp16():
    recommendation = recommend(gpu_machine("cuda", 16, capability=(7, 5)))
    assert recommendation.settings["mixed_precision"] == "fp16"


@pytest.mark.parametrize(("ram_gb", "precision"), [(16, "int4-quanto"), (64, "no_change")])
def test_macs_fit_in_the_shared_memory_and_never_use_nf4(ram_gb, precision):
    machine = mac_machine(ram_gb)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    estimate = recommendation.estimate
    assert estimate.unified_memory
    assert estimate.peak_combined_bytes <= machine.ram_available
    assert recommendation.settings["base_model_precision"] == precision


def test_rocm_cards_never_get_nf4():
    machine = gpu_machine("rocm", 12)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    assert recommendation.settings["base_model_precision"] == "int4-quanto"
    small = recommend(gpu_machine("rocm", 8))  # int4 is the smallest format without CUDA: 8 GB is short
    assert not small.fits
    assert small.settings["base_model_precision"] == "int4-quanto"
    assert any("NF4" in reason for reason in small.reasons)


def test_when_nothing_fits_it_says_what_is_missing():
    recommendation = recommend(gpu_machine("cuda", 4))
    assert not recommendation.fits
    assert recommendation.reasons[1].startswith("Nothing fits: even NF4 at 512 px with rank 8 needs")
    assert "short with the safety margin" in recommendation.reasons[1]
    assert any("demo" in reason for reason in recommendation.reasons)


def test_cpu_only_offers_the_demo_honestly():
    recommendation = recommend(cpu_machine(32))
    assert recommendation.device.kind == "cpu"
    assert not recommendation.fits
    assert recommendation.settings["model_flavour"] == "demo"
    assert any("not practical" in reason for reason in recommendation.reasons)
    config = TrainingConfig().replace(**recommendation.settings)
    assert not errors(config.validate())
    assert recommendation.estimate.peak_combined_bytes < 4 * GiB


def test_the_demo_trains_about_a_minute_of_steps():
    """The demo is offered as "about a minute": that is about 100 steps, not the 1,000 default."""
    import json

    from chroma_studio.base.paths import resources_dir

    recommendation = recommend(cpu_machine(32))
    assert TrainingConfig().replace(**recommendation.settings).optim.max_train_steps == 100
    demo = json.loads((resources_dir() / "configs" / "demo.json").read_text(encoding="utf-8"))
    assert demo["max_train_steps"] == 100


def test_dataset_resolution_caps_the_training_resolution():
    assert target_resolution(None) == 1024
    assert target_resolution(600) == 576
    assert target_resolution(4000) == 1024
    assert target_resolution(300) == 512
    recommendation = recommend(gpu_machine("cuda", 80), dataset_resolution=768)
    assert recommendation.settings["resolution"] == 768
    assert "768 px, matching your images." in recommendation.reasons


def test_from_faked_nvml_to_a_recommendation(fake_nvml):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4070", 12, used_gb=0.4), ram_gb=32)
    machine = detect_machine()
    recommendation = recommend(machine)
    assert recommendation.device.name == "NVIDIA GeForce RTX 4070"
    assert_fits(recommendation, machine)
    assert recommendation.to_dict()["settings"]["base_model_precision"] == "int4-quanto"
