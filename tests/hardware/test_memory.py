"""The memory model: the quickstart's figures, storage formats, and how settings move the peaks."""

from __future__ import annotations

import pytest

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware.architecture import chroma_architecture
from chroma_studio.hardware.memory import (
    QUICKSTART_ASSUMPTIONS,
    QUICKSTART_FIGURES_GB,
    QUICKSTART_SETTINGS,
    Assumptions,
    estimate_memory,
)
from chroma_studio.hardware.phases import PHASES

GiB = 2**30
ARCH = chroma_architecture()


def config(**values) -> TrainingConfig:
    return TrainingConfig().replace(**values)


def part(estimate, phase: str, prefix: str):
    return next(p for p in estimate.phase(phase).parts if p.name.startswith(prefix))


@pytest.mark.parametrize(("precision", "figure_gb"), list(QUICKSTART_FIGURES_GB.items()))
def test_reproduces_the_quickstart_rank_16_figures_within_15_percent(precision, figure_gb):
    estimate = estimate_memory(
        config(base_model_precision=precision, **QUICKSTART_SETTINGS), "cuda", QUICKSTART_ASSUMPTIONS
    )
    assert estimate.peak_device_bytes / GiB == pytest.approx(figure_gb, rel=0.15)


@pytest.mark.parametrize("precision", ["no_change", "int8-quanto"])
def test_explains_the_quickstarts_40_to_50_gb_of_ram_while_loading(precision):
    settings = {**QUICKSTART_SETTINGS, "offload_during_startup": True}
    estimate = estimate_memory(config(base_model_precision=precision, **settings), "cuda", QUICKSTART_ASSUMPTIONS)
    assert estimate.peak_host_phase == "loading"
    assert 40 <= estimate.peak_host_bytes / GiB <= 50
    # the engine memory-maps the checkpoint and stages one block: a fraction of that
    ours = estimate_memory(config(base_model_precision=precision, **settings), "cuda")
    assert ours.peak_host_bytes < 8 * GiB


def test_bf16_weights_are_two_bytes_per_parameter():
    estimate = estimate_memory(config(base_model_precision="no_change"), "cuda")
    assert part(estimate, "training", "transformer weights").device_bytes == 2 * ARCH.transformer_params
    fp32 = estimate_memory(config(base_model_precision="no_change", mixed_precision="no"), "cuda")
    assert part(fp32, "training", "transformer weights").device_bytes == 4 * ARCH.transformer_params


def weights(precision: str) -> int:
    estimate = estimate_memory(config(base_model_precision=precision), "cuda")
    names = ("transformer weights", "int8 scales", "int4 scales", "NF4 scales", "unquantized")
    return sum(p.device_bytes for p in estimate.phase("training").parts if p.name.startswith(names))


def test_quantized_storage_formats():
    kept = 2 * (ARCH.unquantized_params + ARCH.block_bias_and_norm_params)
    q = ARCH.quantizable_weights
    out_channels = sum(ARCH.blocks(k) * sum(lin.out_features for lin in ARCH.linears(k)) for k in ("double", "single"))
    assert weights("int8-quanto") == q + 2 * out_channels + kept  # 1 byte + a bf16 scale per output channel
    assert weights("int4-quanto") == q // 2 + (q // 128) * 4 + kept  # half a byte + bf16 scale and shift per 128
    blocks = q // 64
    assert weights("nf4-bnb") == q // 2 + blocks + (blocks // 256) * 4 + kept  # 8-bit absmax, fp32 absmax of those
    assert weights("no_change") > weights("int8-quanto") > weights("int4-quanto") > weights("nf4-bnb")
    assert weights("int8-quanto") / GiB == pytest.approx(8.57, abs=0.05)


def test_lora_state_is_fp32_weights_grads_and_two_adam_states():
    for target, rank in (("all", 16), ("all+ffs", 32), ("context", 8)):
        estimate = estimate_memory(config(flux_lora_target=target, lora_rank=rank), "cuda")
        assert part(estimate, "training", "LoRA").device_bytes == 16 * ARCH.lora_params(target, rank)
        assert part(estimate, "sampling", "LoRA").device_bytes == 12 * ARCH.lora_params(target, rank)


def training(**values) -> int:
    return estimate_memory(config(**values), "cuda").phase("training").device_bytes


def test_training_memory_grows_with_resolution_batch_rank_targets_and_no_checkpointing():
    assert training(resolution=512) < training(resolution=768) < training(resolution=1024)
    assert training(train_batch_size=1) < training(train_batch_size=2) < training(train_batch_size=4)
    assert training(lora_rank=8) < training(lora_rank=64)
    assert (
        training(flux_lora_target="context") < training(flux_lora_target="all") < training(flux_lora_target="all+ffs")
    )
    with_checkpointing = training(resolution=1024, gradient_checkpointing=True)
    without = training(resolution=1024, gradient_checkpointing=False)
    assert without > with_checkpointing + 20 * GiB  # every block's activations, not just its inputs


def test_checkpointing_keeps_each_blocks_input_once():
    estimate = estimate_memory(config(resolution=1024, gradient_checkpointing=True), "cuda")
    held = part(estimate, "training", "activations: checkpointed").device_bytes
    tokens = (1024 // 16) ** 2 + 128
    assert held == (19 + 38) * tokens * 3072 * 2


def test_text_tokens_and_the_tokenizer_cap():
    short = estimate_memory(config(), "cuda", Assumptions(text_tokens=64))
    long = estimate_memory(config(), "cuda", Assumptions(text_tokens=512))
    assert short.phase("training").device_bytes < long.phase("training").device_bytes
    capped = estimate_memory(config(tokenizer_max_length=64), "cuda", Assumptions(text_tokens=512))
    assert (
        capped.phase("training").device_bytes
        <= estimate_memory(config(), "cuda", Assumptions(text_tokens=65)).phase("training").device_bytes
    )


def test_offload_during_startup_streams_t5_instead_of_holding_it():
    whole = estimate_memory(config(offload_during_startup=False), "cuda").phase("caching_text")
    streamed = estimate_memory(config(offload_during_startup=True), "cuda").phase("caching_text")
    assert part_of(whole, "T5-XXL weights") == pytest.approx(ARCH.t5_params * 2)
    assert streamed.device_bytes < 1.5 * GiB < 9 * GiB < whole.device_bytes


def part_of(phase, name: str) -> int:
    return next(p.device_bytes for p in phase.parts if p.name == name)


def test_quantizing_loads_one_full_precision_block_at_a_time():
    estimate = estimate_memory(config(base_model_precision="int8-quanto"), "cuda")
    block = part(estimate, "loading", "block being quantized").device_bytes
    assert block == 2 * max(ARCH.block_params("double"), ARCH.block_params("single"))
    assert estimate.phase("loading").device_bytes < 10.5 * GiB


def test_every_phase_is_reported_and_the_peak_is_the_largest():
    estimate = estimate_memory(config(), "cuda")
    assert [p.name for p in estimate.phases] == list(PHASES)
    assert estimate.peak_device_bytes == max(p.device_bytes for p in estimate.phases)
    assert estimate.phase(estimate.peak_device_phase).device_bytes == estimate.peak_device_bytes


def test_json_form_has_peaks_and_a_breakdown_by_phase_and_part():
    data = estimate_memory(config(base_model_precision="int4-quanto"), "cuda").to_dict()
    assert data["peak_device_gb"] == pytest.approx(max(p["device_gb"] for p in data["breakdown"].values()), abs=1e-3)
    assert data["peak_host_gb"] > 0
    assert set(data["breakdown"]) == set(PHASES)
    training_parts = data["breakdown"]["training"]["parts"]
    assert {"transformer weights (int4)", "int4 scales", "LoRA weights, gradients and AdamW states (fp32)"} <= set(
        training_parts
    )
    total = sum(p["device_gb"] for p in training_parts.values())
    assert total == pytest.approx(data["breakdown"]["training"]["device_gb"], abs=0.01)


def test_the_demo_flavour_needs_little():
    estimate = estimate_memory(config(model_flavour="demo"), "cpu")
    assert estimate.peak_device_bytes < GiB and estimate.peak_host_bytes < 3 * GiB


def test_unified_memory_adds_device_and_host():
    mac = estimate_memory(config(), "mps")
    assert mac.unified_memory
    assert mac.peak_combined_bytes == max(p.device_bytes + p.host_bytes for p in mac.phases)
    assert mac.peak_combined_bytes > mac.peak_device_bytes
