"""Block streaming in the memory and speed model: which blocks move, where their bytes go, what it costs."""

from __future__ import annotations

import pytest
from fakes import FakeGpu, GiB

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import activations as act
from chroma_studio.hardware import detect_machine, estimate_memory
from chroma_studio.hardware.architecture import chroma_architecture
from chroma_studio.hardware.budget import pinned_bytes
from chroma_studio.hardware.storage import block_storage_bytes
from chroma_studio.hardware.streaming import (
    link_bandwidth,
    step_cost,
    streamed_blocks,
    streamed_counts,
    streaming_cost,
    tier_for,
)

ARCH = chroma_architecture()
TOKENS_1024 = act.TokenCounts(4096, 128)
TOKENS_512 = act.TokenCounts(1024, 128)


def config(**values) -> TrainingConfig:
    return TrainingConfig().replace(**{"resolution": 1024, "offload_during_startup": True, **values})


def part(estimate, phase: str, prefix: str):
    return next((p for p in estimate.phase(phase).parts if p.name.startswith(prefix)), None)


def test_the_last_blocks_stream_singles_first():
    assert streamed_counts(ARCH, 0) == {"double": 0, "single": 0}
    assert streamed_counts(ARCH, 10) == {"double": 0, "single": 10}
    assert streamed_counts(ARCH, 38) == {"double": 0, "single": 38}
    assert streamed_counts(ARCH, 40) == {"double": 2, "single": 38}
    assert streamed_counts(ARCH, 57) == {"double": 19, "single": 38}


def test_a_streamed_block_is_stored_at_its_precision():
    double_bf16 = block_storage_bytes(ARCH, "double", "no_change", 2)
    assert double_bf16 == 2 * ARCH.block_params("double")
    int8 = block_storage_bytes(ARCH, "double", "int8-quanto", 2)
    int4 = block_storage_bytes(ARCH, "double", "int4-quanto", 2)
    assert double_bf16 / 2 < int8 < 0.52 * double_bf16  # 1 byte a weight + scales, biases in bf16
    assert int8 / 2 < int4 < 0.55 * int8
    # per block and for the whole transformer, the formats add up to the same bytes
    total = sum(ARCH.blocks(k) * block_storage_bytes(ARCH, k, "int8-quanto", 2) for k in ("double", "single"))
    whole = estimate_memory(config(base_model_precision="int8-quanto"), "cuda")
    resident = estimate_memory(config(base_model_precision="int8-quanto", blocks_to_swap=57), "cuda")
    weights = ("transformer weights", "int8 scales", "unquantized")

    def weight_bytes(estimate) -> int:
        return sum(p.device_bytes for p in estimate.phase("training").parts if p.name.startswith(weights))

    assert weight_bytes(whole) - weight_bytes(resident) == total


@pytest.mark.parametrize("precision", ["no_change", "int8-quanto", "int4-quanto"])
@pytest.mark.parametrize("k", [12, 38, 45, 57])
def test_streaming_moves_the_blocks_bytes_from_the_device_to_pinned_ram(precision, k):
    plain = estimate_memory(config(base_model_precision=precision), "cuda")
    streamed = estimate_memory(config(base_model_precision=precision, blocks_to_swap=k), "cuda")
    blocks = streamed_blocks(ARCH, k, precision, 2)
    largest = max(blocks.block_bytes[kind] for kind, n in blocks.counts.items() if n)
    for phase in ("training", "sampling"):
        saved = plain.phase(phase).device_bytes - streamed.phase(phase).device_bytes
        assert saved == blocks.host_bytes - 2 * largest  # the blocks leave, two blocks' buffers come
        assert part(streamed, phase, "streaming buffers").device_bytes == 2 * largest
    for phase in ("loading", "training", "sampling"):
        pinned = part(streamed, phase, "streamed blocks in pinned RAM")
        assert pinned.name.endswith(f"({k} of 57)")
        assert pinned.host_bytes == blocks.host_bytes
        assert streamed.phase(phase).host_bytes - plain.phase(phase).host_bytes == blocks.host_bytes
    # the peak falls by about the streamed bytes: the two buffers take back a small share
    assert blocks.host_bytes > plain.peak_device_bytes - streamed.peak_device_bytes > 0.8 * blocks.host_bytes
    assert pinned_bytes(streamed) == blocks.host_bytes and pinned_bytes(plain) == 0


def test_the_lora_and_the_activations_stay_on_the_device():
    plain = estimate_memory(config(base_model_precision="int8-quanto"), "cuda")
    streamed = estimate_memory(config(base_model_precision="int8-quanto", blocks_to_swap=50), "cuda")
    for prefix in ("LoRA", "activations: checkpointed", "activations: block in backward"):
        assert part(plain, "training", prefix).device_bytes == part(streamed, "training", prefix).device_bytes > 0


def test_an_8_gb_card_reaches_1024_px_only_by_streaming():
    budget = 7.5 * GiB * 0.9
    assert estimate_memory(config(base_model_precision="int4-quanto"), "cuda").peak_device_bytes > budget
    streamed = estimate_memory(config(base_model_precision="int8-quanto", blocks_to_swap=52), "cuda")
    assert streamed.peak_device_bytes < budget


@pytest.mark.parametrize(("kind", "precision"), [("mps", "int8-quanto"), ("cpu", "int8-quanto"), ("cuda", "nf4-bnb")])
def test_where_blocks_do_not_stream_the_estimate_says_so_and_counts_them_on_the_device(kind, precision):
    plain = estimate_memory(config(base_model_precision=precision), kind)
    asked = estimate_memory(config(base_model_precision=precision, blocks_to_swap=30), kind)
    assert [p.device_bytes for p in asked.phases] == [p.device_bytes for p in plain.phases]
    assert [p.host_bytes for p in asked.phases] == [p.host_bytes for p in plain.phases]
    assert any(note.startswith("blocks_to_swap 30 is not counted") for note in asked.notes)
    assert step_cost(config(base_model_precision=precision, blocks_to_swap=30), ARCH, kind=kind, memory_bytes=0) is None


def test_mps_is_refused_with_the_reason():
    estimate = estimate_memory(config(base_model_precision="int8-quanto", blocks_to_swap=30), "mps")
    assert any("share one memory" in note for note in estimate.notes)


def cost(k: int, *, tokens=TOKENS_512, precision="no_change", memory_gb=24, pcie=None):
    blocks = streamed_blocks(ARCH, k, precision, 2)
    return streaming_cost(ARCH, blocks, tokens, batch=1, memory_bytes=int(memory_gb * GiB), pcie=pcie)


def test_the_bytes_per_step_are_two_copies_of_the_streamed_blocks():
    c = cost(40, precision="int8-quanto")
    assert c.bytes_per_step == 2 * streamed_blocks(ARCH, 40, "int8-quanto", 2).host_bytes
    assert c.transfer_seconds == pytest.approx(c.bytes_per_step / c.bandwidth)


def test_the_slowdown_grows_with_the_blocks_streamed():
    slow_link = (3, 4)  # PCIe 3.0 x4, slower than any block's compute at 512 px
    slowdowns = [cost(k, pcie=slow_link).slowdown for k in (0, 10, 38, 57)]
    assert slowdowns[0] == 0
    assert slowdowns == sorted(slowdowns) and len(set(slowdowns)) == 4


def test_the_slowdown_grows_as_the_bandwidth_falls():
    slowdowns = [cost(57, pcie=link).slowdown for link in ((4, 16), (4, 8), (3, 8), (3, 4), (3, 1))]
    assert slowdowns == sorted(slowdowns)
    assert slowdowns[-1] > 1 > slowdowns[0]


def test_copies_hide_behind_compute_at_1024_px_on_a_laptop():
    laptop = cost(57, tokens=TOKENS_1024, precision="int8-quanto", memory_gb=8)
    assert laptop.transfer_seconds < laptop.compute_seconds
    assert laptop.slowdown < 0.01  # only the backward's first copy waits
    # and the same link with a desktop card's compute at 512 px does not hide them
    assert cost(57, precision="no_change", memory_gb=48).slowdown > laptop.slowdown * 10


def test_compute_follows_the_tokens_and_the_tier():
    assert cost(20, tokens=TOKENS_1024).compute_seconds > 4 * cost(20, tokens=TOKENS_512).compute_seconds * 0.9
    assert cost(20, memory_gb=8).compute_seconds > cost(20, memory_gb=24).compute_seconds
    assert tier_for(6 * GiB).pcie_width == 8 and tier_for(12 * GiB).pcie_width == 16


def test_link_bandwidth_from_the_pcie_generation_and_lanes():
    assert link_bandwidth(4, 8) / 1e9 == pytest.approx(12.6, abs=0.1)
    assert link_bandwidth(4, 16) / 1e9 == pytest.approx(25.2, abs=0.1)
    assert link_bandwidth(3, 16) == pytest.approx(link_bandwidth(4, 8), rel=0.01)
    assert link_bandwidth(5, 16) > link_bandwidth(4, 16)


def test_the_link_nvml_reports_replaces_the_tiers(fake_nvml):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4060 Laptop GPU", 8, pcie=(3, 8)), ram_gb=16)
    device = detect_machine().best_device
    assert device.pcie == (3, 8)
    assert "PCIe 3.0 x8" in device.details()
    streamed = step_cost(
        config(base_model_precision="int8-quanto", blocks_to_swap=50),
        ARCH,
        kind="cuda",
        memory_bytes=device.total_bytes,
        pcie=device.pcie,
    )
    assert streamed.bandwidth == pytest.approx(link_bandwidth(3, 8))
    assert streamed.bandwidth_source == "PCIe 3.0 x8, reported by the driver"


def test_a_card_without_a_reported_link_gets_its_tiers(fake_nvml):
    fake_nvml(FakeGpu("NVIDIA GeForce RTX 4050 Laptop GPU", 6))
    device = detect_machine().best_device
    assert device.pcie is None
    settings = config(base_model_precision="int8-quanto", blocks_to_swap=57)
    streamed = step_cost(settings, ARCH, kind="cuda", memory_bytes=device.total_bytes)
    assert "typical of RTX 4050" in streamed.bandwidth_source


def test_t5_caching_fits_a_6_gb_card_when_it_streams():
    estimate = estimate_memory(config(base_model_precision="int8-quanto", blocks_to_swap=57), "cuda")
    assert estimate.phase("caching_text").device_bytes < 1.5 * GiB  # of a 6 GB card's 5.5 GB usable
    whole = estimate_memory(config(base_model_precision="int8-quanto", offload_during_startup=False), "cuda")
    assert whole.phase("caching_text").device_bytes > 6 * GiB  # T5-XXL whole does not fit


@pytest.mark.parametrize("kind", ["double", "single"])
def test_the_flop_count_matches_torchs_counter_on_a_real_width_block(kind):
    """A real-width block on the meta device (no weights): torch counts every matmul its forward runs."""
    import torch
    from diffusers.models.transformers.transformer_chroma import ChromaSingleTransformerBlock, ChromaTransformerBlock
    from diffusers.models.transformers.transformer_flux import FluxPosEmbed
    from torch.utils.flop_counter import FlopCounterMode

    from chroma_studio.hardware.streaming import block_forward_flops

    image, text = 256, 32
    bf16 = torch.bfloat16
    with torch.device("meta"):
        if kind == "double":
            block = ChromaTransformerBlock(3072, 24, 128).to(bf16)
            args = (torch.empty(1, image, 3072, dtype=bf16), torch.empty(1, text, 3072, dtype=bf16))
            args += (torch.empty(1, 12, 3072, dtype=bf16),)
        else:
            block = ChromaSingleTransformerBlock(3072, 24, 128).to(bf16)
            args = (torch.empty(1, image + text, 3072, dtype=bf16), torch.empty(1, 3, 3072, dtype=bf16))
        mask = torch.ones(1, image + text, dtype=torch.bool)
    rotary = tuple(r.to("meta") for r in FluxPosEmbed(theta=10000, axes_dim=[16, 56, 56])(torch.zeros(image + text, 3)))
    with FlopCounterMode(display=False) as counter:
        block(*args, image_rotary_emb=rotary, attention_mask=mask)
    linear, attention = block_forward_flops(ARCH, kind, act.TokenCounts(image, text), 1)
    assert counter.get_total_flops() == linear + attention
