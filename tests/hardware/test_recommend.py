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
    ("total_gb", "ram_gb", "precision", "resolution", "streams"),
    [
        (6, 64, "no_change", 768, True),  # 1024 px needs 5.0 GB: within the safety margin of 5.5 GB
        (8, 64, "no_change", 1024, True),
        (8, 16, "int8-quanto", 1024, True),  # bf16's pinned copies would take most of the RAM
        (12, 16, "int8-quanto", 1024, True),
        (12, 64, "no_change", 1024, True),
        (16, 64, "no_change", 1024, True),
        (24, 64, "no_change", 1024, False),
        (80, 64, "no_change", 1024, False),
    ],
)
def test_nvidia_cards_get_the_best_setting_that_fits(total_gb, ram_gb, precision, resolution, streams):
    machine = gpu_machine("cuda", total_gb, ram_gb=ram_gb)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    assert recommendation.settings["base_model_precision"] == precision
    assert recommendation.settings["resolution"] == resolution
    assert recommendation.settings["mixed_precision"] == "bf16"
    assert (recommendation.settings["blocks_to_swap"] > 0) is streams
    assert (recommendation.streaming is not None) is streams
    assert any("GB free" in reason for reason in recommendation.reasons)
    assert recommendation.reasons[-1].startswith("Predicted peak:")


def test_the_fewest_blocks_that_fit_are_streamed():
    machine = gpu_machine("cuda", 8, ram_gb=16)
    recommendation = recommend(machine)
    blocks = recommendation.settings["blocks_to_swap"]
    fewer = TrainingConfig().replace(**{**recommendation.settings, "blocks_to_swap": blocks - 1})
    assert Budget.of(machine, machine.best_device).device_shortfall(estimate_memory(fewer, "cuda")) > 0


def test_the_reason_names_the_better_setting_and_its_need():
    machine = mac_machine(24)  # Macs do not stream: the better precision simply needs more
    recommendation = recommend(machine)
    assert recommendation.settings["base_model_precision"] == "int8-quanto"
    better = estimate_memory(
        TrainingConfig().replace(
            **{**recommendation.settings, "base_model_precision": "no_change", "offload_during_startup": True}
        ),
        machine.best_device,
    )
    free = machine.best_device.free_bytes / GiB
    expected = f"int8: bf16 needs {better.peak_device_bytes / GiB:.1f} GB at 1024 px, you have {free:.1f} GB free."
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
    assert idle.settings["base_model_precision"] == busy.settings["base_model_precision"] == "no_change"
    assert idle.settings["blocks_to_swap"] == 0
    assert busy.settings["blocks_to_swap"] > 0  # the rest of bf16 streams from RAM
    assert busy.peak_device_bytes < idle.peak_device_bytes


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
    for total_gb, ram_gb in ((12, 16), (8, 16)):  # streaming brings an 8 GB AMD card to 1024 px
        machine = gpu_machine("rocm", total_gb, ram_gb=ram_gb)
        recommendation = recommend(machine)
        assert_fits(recommendation, machine)
        assert recommendation.settings["base_model_precision"] == "int8-quanto"
        assert recommendation.settings["resolution"] == 1024
    small = recommend(gpu_machine("rocm", 3))
    assert not small.fits
    assert small.settings["base_model_precision"] != "nf4-bnb"
    assert any("NF4" in reason for reason in small.reasons)


def test_when_nothing_fits_it_says_what_is_missing():
    recommendation = recommend(gpu_machine("cuda", 3))
    assert not recommendation.fits
    assert recommendation.reasons[1].startswith(
        "Nothing fits: even int8 at 512 px with rank 8 and all 57 blocks streamed from RAM needs"
    )
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
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4070", 12, used_gb=0.4, pcie=(4, 16)), ram_gb=32)
    machine = detect_machine()
    recommendation = recommend(machine)
    assert recommendation.device.name == "NVIDIA GeForce RTX 4070"
    assert_fits(recommendation, machine)
    data = recommendation.to_dict()
    assert data["settings"]["base_model_precision"] == "no_change"
    assert data["streaming"]["blocks_streamed"] == data["settings"]["blocks_to_swap"] > 0
    assert data["streaming"]["bandwidth_source"] == "PCIe 4.0 x16, reported by the driver"
    assert 0 < data["streaming"]["pinned_ram_gb"] <= 16


def streaming_reason(recommendation) -> str:
    return next(reason for reason in recommendation.reasons if reason.startswith("Streams "))


@pytest.mark.parametrize("total_gb", [6, 8])
def test_small_laptop_cards_train_at_1024_px_by_streaming(total_gb):
    # a laptop whose desktop runs on the integrated GPU leaves the card nearly free
    machine = gpu_machine("cuda", total_gb, free_gb=total_gb - 0.1, ram_gb=32)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    assert recommendation.settings["resolution"] == 1024
    blocks = recommendation.settings["blocks_to_swap"]
    peak = recommendation.peak_device_bytes / GiB
    sentence = streaming_reason(recommendation)
    assert sentence.startswith(f"Streams {blocks} of 57 blocks from RAM: ")
    assert f"fits {peak:.1f} GB" in sentence
    assert recommendation.streaming.slowdown < 0.05  # at 1024 px each copy hides behind a block's compute


def test_a_6_gb_card_with_the_desktop_on_it_is_told_how_close_1024_px_is():
    recommendation = recommend(gpu_machine("cuda", 6))
    assert recommendation.settings["resolution"] == 768
    assert any(
        reason.startswith("768 px: 1024 px does not fit this device")
        and "within the safety margin of your 5.5 GB free" in reason
        for reason in recommendation.reasons
    )


def test_a_16_gb_laptop_is_told_what_more_ram_would_change():
    machine = gpu_machine("cuda", 8, ram_gb=16)
    recommendation = recommend(machine)
    assert_fits(recommendation, machine)
    assert recommendation.settings["base_model_precision"] == "int8-quanto"
    advice = recommendation.reasons[1]
    assert advice.startswith("int8: bf16 at 1024 px would stream")
    assert "more than half of this machine's 16.0 GB of RAM" in advice
    assert advice.endswith("To train in bf16, it needs a machine with 32 GB of RAM or more.")


def test_a_machine_short_of_ram_for_any_streaming_is_told_to_free_some():
    machine = gpu_machine("cuda", 6, ram_gb=6)  # the card needs streaming; 6 GB of RAM cannot pin enough
    recommendation = recommend(machine)
    assert not recommendation.fits
    advice = recommendation.reasons[1]
    assert advice.startswith("Nothing fits this machine's RAM: int4 at 512 px would stream ")
    assert "it needs a machine with 8 GB of RAM or more" in advice or "close other programs" in advice


def test_a_slow_link_trades_streaming_for_a_lower_precision():
    fast = recommend(gpu_machine("cuda", 16, pcie=(4, 16)), dataset_resolution=512)
    assert fast.settings["base_model_precision"] == "no_change" and fast.settings["blocks_to_swap"] > 0
    slow = recommend(gpu_machine("cuda", 16, pcie=(3, 1)), dataset_resolution=512)
    assert slow.settings["base_model_precision"] == "int8-quanto" and slow.settings["blocks_to_swap"] == 0
    assert slow.reasons[1].startswith("int8: bf16 would stream ")
    assert "slower: more than the 50% a better precision is worth." in slow.reasons[1]


def test_macs_never_stream():
    for ram_gb in (16, 24, 32):
        recommendation = recommend(mac_machine(ram_gb))
        assert recommendation.settings["blocks_to_swap"] == 0 and recommendation.streaming is None
