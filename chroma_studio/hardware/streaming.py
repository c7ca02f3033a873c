"""Block streaming in the memory and speed model: what ``blocks_to_swap`` moves, and what it costs.

The engine's streamer (``training/streaming.py``) keeps the frozen weights of the LAST ``k`` of
Chroma's 57 transformer blocks (19 double, then 38 single, in execution order) in pinned host RAM
and copies each to the GPU just before it runs, in the forward and again in the recompute of the
backward (gradient checkpointing), on a side stream so the next block's copy overlaps this block's
compute. Here it is modelled, not run:

Memory. The device holds the resident blocks, two buffers the size of the largest streamed block
(double buffering: one block runs while the next arrives) and every LoRA parameter (LoRA never
streams); host RAM holds the pinned copies of the streamed blocks, at their stored precision.
Streaming needs CUDA streams: it applies on CUDA and ROCm. On Apple silicon the GPU and the CPU
share one memory, so moving a block "to RAM" frees nothing; on the CPU there is nowhere to stream
to. There the model counts every block as resident and says so.

Speed. A streamed block's copy hides behind the compute of the block that runs before it (in the
backward, behind the recompute and backward of the block after it), so a step is slower only by
the part of each copy that outlasts that compute, plus the first copy of the backward pass, which
nothing hides. ``slowdown = stalled copy time / the step's compute time``: max(0, transfer -
compute) / compute, taken block by block instead of step by step, since a whole step's compute
easily covers its copies but a copy can only hide behind the one block before it. What the model
leaves out (the hooks' own time, synchronisation, a copy slowed by a busy memory bus) makes it a
lower bound: at 1024 px on a laptop card it says under 1%; at 512 px on a fast card with a narrow
link it says more than the copies are worth, and the recommendation then prefers a lower precision.

Copy bandwidth (bytes per second, 10^9 a GB): the PCIe link's rate per lane (PCI-SIG: 8, 16 and
32 GT/s with 128b/130b coding for gen 3, 4 and 5: 0.985, 1.969 and 3.938 GB/s per lane) times the
lanes, times 0.8 for what a pinned host-to-device copy achieves (CUDA's bandwidthTest reaches about
80% of the link on desktop boards). So PCIe 4.0 x8, as the RTX 4050/4060/4070 laptop GPUs and the
RTX 4060 / 4060 Ti have it, copies about 12.6 GB/s; PCIe 4.0 x16 about 25 GB/s. NVML reports the
link where the card is NVIDIA (``DeviceInfo.pcie_gen``/``pcie_width``); otherwise the tier's
typical link below. Pinning that fails falls back to pageable copies at about half that rate; the
model does not assume it.

Compute: the blocks' matrix multiplications (2 FLOPs per weight per token; a double block's image
and text layers see their own tokens) and attention (4 T^2 x dim per block: the scores and the
weighted sum), counted once for the forward, once for the recompute and once (the frozen linears
need only the input gradient) or 2.5 times (attention's backward) for the backward. LoRA adds under
1% and is left out. Throughput is the tier's typical dense bf16 tensor peak with fp32 accumulation
(NVIDIA's Ampere GA102 and Ada AD102 whitepapers: the GeForce cards run at half their fp16-accumulate
rate) times 0.4, for what LoRA training on a quantized model reaches (quanto dequantizes each weight
before its matmul; norms, modulation and the optimizer run below the tensor peak). The tier is the
card's memory class, which stands for its chip here. The FLOP count equals torch's own counter on a
real-width block (a test); ``tests/benchmarks/gpu_fit.py`` prints a measured host-to-device rate
and compute seconds per step, to check the two rates against a card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import activations as act
from chroma_studio.hardware.architecture import ChromaArchitecture
from chroma_studio.hardware.storage import block_storage_bytes

STREAMING_KINDS = ("cuda", "rocm")
BUFFERS = 2  # the block that runs and the block that arrives
LANE_GB_S = {3: 0.985, 4: 1.969, 5: 3.938}  # PCIe bytes per second per lane, in GB (10^9)
COPY_EFFICIENCY = 0.8  # what a pinned host-to-device copy reaches of the link
COMPUTE_EFFICIENCY = 0.4  # what quantized LoRA training reaches of the tensor peak
# (card memory from, typical cards, dense bf16 TFLOPS with fp32 accumulation, PCIe generation, lanes)
TIERS: tuple[tuple[float, str, float, int, int], ...] = (
    (0, "RTX 4050 / 3060 Laptop (6 GB)", 20.0, 4, 8),
    (7, "RTX 4060 / 4070 Laptop, RTX 4060, 3070 (8 GB)", 25.0, 4, 8),
    (11, "RTX 3060 12 GB, 4070 (12 GB)", 40.0, 4, 16),
    (15, "RTX 4060 Ti 16 GB, 4080 (16 GB)", 60.0, 4, 16),
    (22, "RTX 3090, 4090 (24 GB)", 100.0, 4, 16),
    (40, "RTX 6000 Ada, A100, H100 (48 GB and more)", 300.0, 4, 16),
)
GiB = 2**30


def applies(kind: str, precision: str = "no_change") -> bool:
    """Whether blocks stream on this kind of device at this precision."""
    return refusal(kind, precision) is None


def refusal(kind: str, precision: str) -> str | None:
    """Why blocks do not stream on ``kind`` at ``precision``, or None where they do."""
    if kind == "mps":
        return "Apple silicon's GPU and CPU share one memory, so a block kept in RAM frees nothing"
    if kind not in STREAMING_KINDS:
        return f"streaming needs CUDA streams (CUDA or ROCm), and the {kind} has none"
    if precision == "nf4-bnb":
        return "the engine does not stream nf4-bnb weights yet (choose int4-quanto or int8-quanto)"
    return None


def not_applied_note(kind: str, precision: str, k: int) -> str:
    """Why ``blocks_to_swap`` is not counted."""
    return f"blocks_to_swap {k} is not counted: {refusal(kind, precision)}; every block is estimated on the device."


def block_order(arch: ChromaArchitecture) -> list[str]:
    """Block kinds in execution order: the double blocks, then the single ones."""
    return ["double"] * arch.double_blocks + ["single"] * arch.single_blocks


def streamed_counts(arch: ChromaArchitecture, k: int) -> dict[str, int]:
    """How many blocks of each kind stream when the last ``k`` do."""
    order = block_order(arch)
    k = max(0, min(k, len(order)))
    streamed = order[len(order) - k :]
    return {kind: streamed.count(kind) for kind in ("double", "single")}


@dataclass(frozen=True)
class StreamedBlocks:
    """The blocks ``blocks_to_swap`` moves to RAM, and the device buffers they need."""

    count: int
    counts: dict[str, int]  # per block kind
    host_bytes: int  # the pinned copies
    buffer_bytes: int  # the device buffers the streamed blocks pass through
    block_bytes: dict[str, int]  # one block of each kind, as stored

    @property
    def device_saving(self) -> int:
        return self.host_bytes - self.buffer_bytes


def streamed_blocks(arch: ChromaArchitecture, k: int, precision: str, dtype_bytes: int) -> StreamedBlocks:
    counts = streamed_counts(arch, k)
    sizes = {kind: block_storage_bytes(arch, kind, precision, dtype_bytes) for kind in ("double", "single")}
    host = sum(counts[kind] * sizes[kind] for kind in counts)
    largest = max((sizes[kind] for kind in counts if counts[kind]), default=0)
    return StreamedBlocks(sum(counts.values()), counts, host, BUFFERS * largest, sizes)


# -- speed -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tier:
    """What a card of this class typically has: its tensor throughput and its PCIe link."""

    cards: str
    peak_tflops: float
    pcie_gen: int
    pcie_width: int


def tier_for(memory_bytes: int) -> Tier:
    """The tier of a card with ``memory_bytes`` of memory (the largest whose lower bound it reaches)."""
    row = [t for t in TIERS if memory_bytes >= t[0] * GiB][-1]
    return Tier(row[1], row[2], row[3], row[4])


def link_bandwidth(gen: int, width: int) -> float:
    """Effective host-to-device bytes per second of a PCIe link of generation ``gen`` with ``width`` lanes."""
    per_lane = LANE_GB_S[min(max(gen, 3), 5)]  # older links count as gen 3, newer as gen 5
    return per_lane * width * COPY_EFFICIENCY * 1e9


def block_forward_flops(arch: ChromaArchitecture, kind: str, tokens: act.TokenCounts, batch: int) -> tuple[int, int]:
    """(matmul FLOPs, attention FLOPs) of one block's forward for a micro-batch."""
    linear = sum(2 * lin.weights * act.stream_tokens(kind, lin.name, tokens) for lin in arch.linears(kind))
    attention = 4 * tokens.joint * tokens.joint * arch.dim
    return batch * linear, batch * attention


# Passes per training step with checkpointing: forward, recompute, backward (input gradients only
# for the frozen linears; attention's backward does about 2.5 times its forward's work).
LINEAR_PASSES = {"forward": 1.0, "backward": 2.0}  # backward = recompute + input gradient
ATTENTION_PASSES = {"forward": 1.0, "backward": 3.5}  # backward = recompute + 2.5


@dataclass(frozen=True)
class StreamingCost:
    """The modelled cost of streaming ``blocks`` blocks in one training step."""

    blocks: int
    bytes_per_step: int  # host to device, forward and recompute
    bandwidth: float  # bytes per second
    bandwidth_source: str
    compute_seconds: float  # the step without streaming
    transfer_seconds: float  # every copy of the step, back to back
    stall_seconds: float  # the part of the copies no compute hides
    throughput_source: str

    @property
    def slowdown(self) -> float:
        """The step's extra time as a fraction of its compute time (0.25: 25% slower)."""
        return self.stall_seconds / self.compute_seconds if self.compute_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "blocks_streamed": self.blocks,
            "gb_per_step": round(self.bytes_per_step / 1e9, 2),
            "bandwidth_gb_s": round(self.bandwidth / 1e9, 1),
            "bandwidth_source": self.bandwidth_source,
            "compute_s_per_step": round(self.compute_seconds, 2),
            "transfer_s_per_step": round(self.transfer_seconds, 2),
            "stall_s_per_step": round(self.stall_seconds, 3),
            "slowdown": round(self.slowdown, 3),
            "throughput_source": self.throughput_source,
        }


def streaming_cost(
    arch: ChromaArchitecture,
    streamed: StreamedBlocks,
    tokens: act.TokenCounts,
    *,
    batch: int,
    memory_bytes: int,
    pcie: tuple[int, int] | None = None,
) -> StreamingCost:
    """The modelled copy and compute time of one micro-batch with ``streamed`` blocks in RAM.

    ``memory_bytes`` (the card's memory) picks the tier; ``pcie`` (generation, lanes), where the
    device reports it, replaces the tier's typical link.
    """
    tier = tier_for(memory_bytes)
    gen, width = pcie or (tier.pcie_gen, tier.pcie_width)
    source = "reported by the driver" if pcie else f"typical of {tier.cards}"
    bandwidth = link_bandwidth(gen, width)
    throughput = tier.peak_tflops * 1e12 * COMPUTE_EFFICIENCY
    order = block_order(arch)
    flops = {kind: block_forward_flops(arch, kind, tokens, batch) for kind in ("double", "single")}

    def seconds(kind: str, passes: str) -> float:
        linear, attention = flops[kind]
        return (linear * LINEAR_PASSES[passes] + attention * ATTENTION_PASSES[passes]) / throughput

    compute = sum(seconds(kind, "forward") + seconds(kind, "backward") for kind in order)
    first = len(order) - streamed.count
    copies = [streamed.block_bytes[order[i]] / bandwidth for i in range(first, len(order))]
    stall = 0.0
    for n, i in enumerate(range(first, len(order))):
        before = seconds(order[i - 1], "forward") if i > 0 else 0.0  # forward: behind the block before
        stall += max(0.0, copies[n] - before)
        # backward runs from the last block down: behind the recompute and backward of the block after;
        # nothing runs before the last block's recompute, so its copy is waited for in full
        after = seconds(order[i + 1], "backward") if i + 1 < len(order) else 0.0
        stall += max(0.0, copies[n] - after)
    return StreamingCost(
        blocks=streamed.count,
        bytes_per_step=2 * streamed.host_bytes,
        bandwidth=bandwidth,
        bandwidth_source=f"PCIe {gen}.0 x{width}, {source}",
        compute_seconds=compute,
        transfer_seconds=2 * streamed.host_bytes / bandwidth,
        stall_seconds=stall,
        throughput_source=f"{tier.peak_tflops:g} TFLOPS bf16 peak x {COMPUTE_EFFICIENCY:g}, typical of {tier.cards}",
    )


def step_cost(
    config: TrainingConfig,
    arch: ChromaArchitecture,
    *,
    kind: str,
    memory_bytes: int,
    pcie: tuple[int, int] | None = None,
    text_tokens: int = 128,
) -> StreamingCost | None:
    """The modelled cost of ``config``'s ``blocks_to_swap`` on a card with ``memory_bytes``; None
    when nothing streams (0 blocks, or a device or precision that does not stream)."""
    m = config.model
    if not m.blocks_to_swap or not applies(kind, m.base_model_precision):
        return None
    dbytes = 4 if m.mixed_precision == "no" else 2
    streamed = streamed_blocks(arch, m.blocks_to_swap, m.base_model_precision, dbytes)
    text = min(text_tokens, config.text.tokenizer_max_length + 1)
    tokens = act.TokenCounts(act.image_tokens(config.data.resolution), text)
    batch = config.optim.train_batch_size
    return streaming_cost(arch, streamed, tokens, batch=batch, memory_bytes=memory_bytes, pcie=pcie)


def describe_slowdown(summary: dict[str, Any]) -> str:
    """The modelled slowdown of a ``StreamingCost.to_dict()`` summary in words, with what it rests on."""
    slowdown = float(summary["slowdown"])
    share = "under 1%" if slowdown < 0.01 else f"about {slowdown:.0%}"
    return (
        f"{share} ({summary['gb_per_step']} GB copied per step at {summary['bandwidth_gb_s']} GB/s, "
        f"{summary['bandwidth_source']}; {summary['compute_s_per_step']} s of compute per step)"
    )
