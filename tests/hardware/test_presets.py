"""Presets: the shipped files load, apply as flat keys, and each fits its tier by the memory model."""

from __future__ import annotations

import json

import pytest
from fakes import GiB, gpu_machine, mac_machine

from chroma_studio.config import TrainingConfig, errors
from chroma_studio.hardware import estimate_memory
from chroma_studio.hardware.presets import PresetError, apply_preset, get_preset, load_preset, load_presets, preset_for
from chroma_studio.hardware.recommend import Budget

PRESETS = load_presets()
# Fits the card's usable memory by the model but not with the recommendation's 10% safety margin:
# a 6 GB card at 1024 px needs every block streamed and rank 8, and still comes within 8% of it.
TIGHT = {"nvidia-6gb": 0.10}


def test_the_shipped_tiers():
    tiers = {(p.tier.devices, p.tier.memory_gb) for p in PRESETS}
    cards = {memory for devices, memory in tiers if "cuda" in devices}
    assert cards == {6, 8, 12, 16, 24, 48}
    assert {memory for devices, memory in tiers if devices == ("mps",)} == {16, 32, 64}
    assert {memory for devices, memory in tiers if "rocm" in devices} == {12, 16, 24, 48}
    for preset in PRESETS:
        assert preset.name and preset.description and preset.settings


def tier_machine(preset, kind):
    if kind == "mps":
        return mac_machine(preset.tier.memory_gb)
    return gpu_machine(kind, preset.tier.memory_gb)


@pytest.mark.parametrize(
    ("preset", "kind"), [(p, kind) for p in PRESETS for kind in p.tier.devices], ids=lambda v: getattr(v, "key", v)
)
def test_each_preset_fits_its_tier(preset, kind):
    machine = tier_machine(preset, kind)
    device = machine.best_device
    config = apply_preset(TrainingConfig(), preset)
    assert not errors(config.validate())
    estimate = estimate_memory(config, device)
    budget = Budget.of(machine, device)
    if preset.key in TIGHT:
        assert estimate.peak_device_bytes <= device.free_bytes
        assert budget.device_shortfall(estimate) <= TIGHT[preset.key] * GiB
        assert not budget.ram_short(estimate)
        assert "Tight" in preset.description
    else:
        assert budget.shortfall(estimate) == 0, (
            f"{preset.key} needs {estimate.peak_device_bytes / GiB:.1f} GB on a {preset.tier.memory_gb:g} GB {kind}"
        )
    if config.model.base_model_precision == "nf4-bnb":
        assert kind == "cuda"


@pytest.mark.parametrize(("key", "ram_gb"), [("nvidia-8gb", 16), ("nvidia-6gb", 24)])
def test_the_small_card_presets_train_at_1024_px_by_streaming_and_say_what_ram_they_need(key, ram_gb):
    preset = get_preset(key)
    config = apply_preset(TrainingConfig(), preset)
    assert config.data.resolution == 1024 and config.model.blocks_to_swap > 0
    assert config.model.base_model_precision in ("int8-quanto", "int4-quanto")  # NF4 does not stream
    assert f"{ram_gb} GB of RAM" in preset.description
    enough, short = (
        gpu_machine("cuda", preset.tier.memory_gb, ram_gb=ram_gb),
        gpu_machine("cuda", preset.tier.memory_gb, ram_gb=ram_gb - 8),
    )
    for machine, fits in ((enough, True), (short, False)):
        estimate = estimate_memory(config, machine.best_device)
        assert Budget.of(machine, machine.best_device).ram_short(estimate) is not fits


def test_applying_returns_a_new_config_with_only_the_preset_keys_changed():
    base = TrainingConfig().replace(learning_rate=3e-4, lora_rank=64, dataset_dirs=["/data/cats"])
    preset = get_preset("gpu-12gb")
    applied = apply_preset(base, preset)
    assert applied is not base
    assert base.lora.lora_rank == 64  # the original is untouched
    for key, value in preset.settings.items():
        assert applied.to_dict()[key] == value
    assert applied.optim.learning_rate == 3e-4 and applied.data.dataset_dirs == ["/data/cats"]
    assert preset.apply(base) == applied


def test_preset_for_picks_the_largest_tier_reached():
    assert preset_for("cuda", 24 * GiB - 200 * 2**20).key == "gpu-24gb"  # a "24 GB" card reports a bit less
    assert preset_for("cuda", 8 * GiB).key == "nvidia-8gb"
    assert preset_for("cuda", 6 * GiB).key == "nvidia-6gb"
    assert preset_for("rocm", 8 * GiB) is None
    assert preset_for("cuda", 80 * GiB).key == "gpu-48gb"
    assert preset_for("mps", 36 * GiB).key == "mac-32gb"
    assert preset_for("cpu", 128 * GiB) is None


def test_macs_match_by_their_ram_not_the_metal_working_set():
    machine = mac_machine(64)
    mac64 = get_preset("mac-64gb")
    assert mac64.tier.matches_device(machine.best_device, machine.ram_total)
    assert not mac64.tier.matches(machine.best_device.kind, machine.best_device.total_bytes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (
            json.dumps({"name": "x", "description": "y", "tier": {"devices": ["cuda"], "memory_gb": 8}}),
            "missing settings",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "description": "y",
                    "tier": {"devices": ["tpu"], "memory_gb": 8},
                    "settings": {"lora_rank": 8},
                }
            ),
            "unknown device kind 'tpu'",
        ),
        (
            json.dumps({"name": "x", "description": "y", "tier": {"devices": ["cuda"]}, "settings": {"lora_rank": 8}}),
            "tier needs devices",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "description": "y",
                    "tier": {"devices": ["cuda"], "memory_gb": 8},
                    "settings": {"lora_rnak": 8},
                }
            ),
            "lora_rnak",
        ),
    ],
)
def test_bad_preset_files_are_refused_with_the_file_named(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(PresetError) as raised:
        load_preset(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_unknown_preset_name():
    with pytest.raises(PresetError, match="no preset named 'gpu-2gb'"):
        get_preset("gpu-2gb")
