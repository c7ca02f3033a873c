"""Several GPUs: the recommendation is sized for the smallest, and a run on all of them never streams.
Also what a 6 GB card with the desktop on it is told about 1024 px."""

import json
import re

import pytest
from fakes import FakeGpu, gpu_machine

from chroma_studio.cli import main
from chroma_studio.config import TrainingConfig, errors
from chroma_studio.hardware import detect_machine, estimate_memory
from chroma_studio.hardware.recommend import Budget, recommend

GiB = 2**30
LAPTOP_4060 = FakeGpu("NVIDIA GeForce RTX 4060 Laptop GPU", 8, pcie=(4, 8))
RTX_4090 = FakeGpu("NVIDIA GeForce RTX 4090", 24, pcie=(4, 16))
RTX_3060 = FakeGpu("NVIDIA GeForce RTX 3060 Laptop GPU", 6, pcie=(4, 8))


def config_of(recommendation) -> TrainingConfig:
    return TrainingConfig().replace(**recommendation.settings)


def assert_fits_without_streaming(recommendation, machine) -> None:
    config = config_of(recommendation)
    assert config.model.blocks_to_swap == 0 and recommendation.streaming is None
    assert not errors(config.validate())  # validate() refuses streaming with several processes
    budget = Budget.of(machine, recommendation.device)
    assert budget.shortfall(estimate_memory(config, recommendation.device)) == 0


def test_two_different_gpus_are_sized_for_the_smaller(fake_nvml):
    fake_nvml(RTX_4090, LAPTOP_4060, ram_gb=64)
    machine = detect_machine()
    recommendation = recommend(machine)
    assert machine.best_device.total_bytes == 24 * GiB  # the larger is still the machine's best device
    assert recommendation.device.name == LAPTOP_4060.name
    assert "Sized for the smallest of your 2 GPUs (8.0 GB)" in recommendation.reasons[1]
    # the same settings as on a machine with the 8 GB card alone
    alone = recommend(gpu_machine("cuda", 8, ram_gb=64, pcie=(4, 8)))
    assert recommendation.settings == alone.settings
    assert recommendation.settings["blocks_to_swap"] > 0  # an 8 GB card streams at 1024 px


def test_equal_gpus_say_one_of_them_and_a_single_gpu_says_nothing(fake_nvml):
    fake_nvml(RTX_4090, RTX_4090, ram_gb=64)
    two = recommend(detect_machine())
    assert two.reasons[1].startswith("Sized for one of your 2 GPUs (24 GB)")
    one = recommend(gpu_machine("cuda", 24))
    assert not any(reason.startswith("Sized for") for reason in one.reasons)


def test_a_run_on_all_gpus_takes_the_best_setting_that_fits_without_streaming(fake_nvml):
    fake_nvml(RTX_4090, LAPTOP_4060, ram_gb=64)
    machine = detect_machine()
    single = recommend(machine)
    on_all = recommend(machine, processes=2)
    assert on_all.fits
    assert on_all.settings["num_processes"] == 2
    assert_fits_without_streaming(on_all, machine)
    name = {"no_change": "bf16", "int8-quanto": "int8", "int4-quanto": "int4"}[single.settings["base_model_precision"]]
    expected = (
        f"one GPU alone would train {name} at {single.settings['resolution']} px, streaming "
        f"{single.settings['blocks_to_swap']} of 57 blocks; on all 2 GPUs no block streams."
    )
    assert any(r.startswith("Several GPUs need a setting that fits without streaming") for r in on_all.reasons)
    assert any(r.endswith(expected) for r in on_all.reasons)
    assert on_all.reasons[-1] == "On 2 GPUs: batch 1 on each, 2 images per step (num_processes 2)."
    assert on_all.processes_reason.endswith(expected)  # the one sentence the app shows for this choice
    # the precision sentence speaks of the setting without streaming, never of blocks streamed
    assert not any("streamed from RAM" in r for r in on_all.reasons)


def test_where_one_gpu_needs_no_streaming_all_gpus_take_the_same_setting(fake_nvml):
    fake_nvml(RTX_4090, RTX_4090, ram_gb=64)
    machine = detect_machine()
    single, on_all = recommend(machine), recommend(machine, processes=2)
    assert single.settings["blocks_to_swap"] == 0
    assert on_all.settings == {**single.settings, "num_processes": 2}
    assert not any(r.startswith("Several GPUs need") for r in on_all.reasons)
    assert on_all.processes_reason == "On 2 GPUs: batch 1 on each, 2 images per step (num_processes 2)."


def test_gpus_that_only_fit_by_streaming_are_told_to_train_on_one(fake_nvml):
    fake_nvml(RTX_3060, RTX_3060, ram_gb=64)
    machine = detect_machine()
    single, on_all = recommend(machine), recommend(machine, processes=2)
    assert single.fits and single.settings["blocks_to_swap"] > 0
    assert not on_all.fits
    assert "num_processes" not in on_all.settings  # the one-GPU settings, which validate as they are
    assert on_all.settings == single.settings
    assert on_all.reasons[-1] == (
        "No setting fits one of these GPUs without streaming blocks from RAM, and a run on 2 GPUs cannot stream: "
        f"train on one GPU (num_processes 1), streaming {single.settings['blocks_to_swap']} of 57 blocks, "
        "with the settings below."
    )
    assert on_all.processes_reason == on_all.reasons[-1]


def test_doctor_shows_the_smallest_gpu_and_the_run_on_all_of_them(fake_nvml, tmp_path, capsys):
    fake_nvml(RTX_4090, LAPTOP_4060, ram_gb=64)
    assert main(["doctor", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Sized for the smallest of your 2 GPUs (8.0 GB)" in out
    section = out[out.index("On all 2 GPUs (num_processes 2)") :]
    assert "  blocks_to_swap: 0\n" in section and "  num_processes: 2\n" in section
    assert "Several GPUs need a setting that fits without streaming" in section
    assert main(["doctor", "--json", "--output-dir", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["data_parallel_gpus"] == 2
    assert document["recommendation"]["settings"]["blocks_to_swap"] > 0
    on_all = document["recommendation_all_gpus"]
    assert on_all["settings"]["blocks_to_swap"] == 0 and on_all["settings"]["num_processes"] == 2
    assert on_all["streaming"] is None


def test_doctor_on_one_gpu_has_no_run_on_all(fake_nvml, tmp_path, capsys):
    fake_nvml(RTX_4090, ram_gb=64)
    assert main(["doctor", "--json", "--output-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["recommendation_all_gpus"] is None


def test_estimate_is_for_the_smallest_gpu(fake_nvml, tmp_path, capsys):
    fake_nvml(RTX_4090, FakeGpu("NVIDIA GeForce RTX 4070", 12, used_gb=1.0), ram_gb=64)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"base_model_precision": "int8-quanto", "resolution": 512}))
    assert main(["estimate", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["device_memory_gb"] == 11.0  # the 12 GB card's free memory, not the 4090's
    assert data["sized_for"] == "Sized for the smallest of your 2 GPUs (12.0 GB)."
    assert main(["estimate", str(config)]) == 0
    assert capsys.readouterr().out.startswith("Sized for the smallest of your 2 GPUs (12.0 GB).\n")


# -- a 6 GB card at 1024 px ----------------------------------------------------------------------------


def _reach_sentence(recommendation) -> str:
    return next(r for r in recommendation.reasons if r.startswith("768 px: 1024 px does not fit"))


def test_a_6_gb_card_with_the_desktop_on_it_is_told_what_gives_1024_px():
    recommendation = recommend(gpu_machine("cuda", 6))  # 0.5 GB used by the desktop: 5.5 GB free
    assert recommendation.settings["resolution"] == 768
    sentence = _reach_sentence(recommendation)
    assert "close programs using the GPU, or run the desktop on the integrated GPU." in sentence
    needed = float(re.search(r"1024 px needs ([\d.]+) GB free", sentence).group(1))
    assert needed > 5.5
    # that much free is enough: the same card with that much free trains at 1024 px
    freed = recommend(gpu_machine("cuda", 6, free_gb=needed))
    assert freed.fits and freed.settings["resolution"] == 1024


def test_rank_4_is_offered_only_as_far_as_the_model_says_it_fits():
    machine = gpu_machine("cuda", 6)
    recommendation = recommend(machine)
    sentence = _reach_sentence(recommendation)
    assert "Or set lora_rank 4: 1024 px then fits (" in sentence
    # the claim checked against the model: rank 4 fits within the margin and rank 8 does not, both at
    # 1024 px in int8 with every block streamed (the least device memory the model knows)
    budget = Budget.of(machine, recommendation.device)
    base = TrainingConfig().replace(
        base_model_precision="int8-quanto",
        resolution=1024,
        blocks_to_swap=57,
        gradient_checkpointing=True,
        offload_during_startup=True,
    )
    assert budget.shortfall(estimate_memory(base.replace(lora_rank=4), recommendation.device)) == 0
    assert budget.device_shortfall(estimate_memory(base.replace(lora_rank=8), recommendation.device)) > 0
    # with a little more used by other programs rank 4 no longer fits, and is not offered
    busier = recommend(gpu_machine("cuda", 6, free_gb=5.4))
    assert "lora_rank 4" not in _reach_sentence(busier)
    assert "close programs using the GPU" in _reach_sentence(busier)


@pytest.mark.parametrize("total_gb", [4, 5])
def test_a_card_too_small_even_when_free_is_not_told_to_close_programs(total_gb):
    recommendation = recommend(gpu_machine("cuda", total_gb))
    sentence = next(r for r in recommendation.reasons if " px: 1024 px does not fit this device" in r)
    assert sentence.endswith("it needs 5.0 GB at least, over your " + f"{total_gb - 0.5:.1f} GB free.")
    assert not any("close programs using the GPU" in r for r in recommendation.reasons)
