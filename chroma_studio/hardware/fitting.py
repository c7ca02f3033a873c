"""The search for the best-quality settings that fit: precision, rank, and blocks streamed from RAM.

Candidates come in quality order (``recommend.py`` says which). One that does not fit the device
may still fit by streaming its frozen blocks from RAM (``blocks_to_swap``, where the device and
precision allow it): the fewest blocks that make it fit are taken. Streaming trades time for a
better precision, so an option that streams is passed over when its modelled slowdown exceeds
``SLOWDOWN_LIMIT`` (a lower precision streams less), or when its pinned copies do not fit the RAM;
the passed-over options are kept so the recommendation can say why, and what would change it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from chroma_studio.config import TrainingConfig
from chroma_studio.hardware import streaming
from chroma_studio.hardware.architecture import chroma_architecture
from chroma_studio.hardware.budget import Budget
from chroma_studio.hardware.detect import DeviceInfo
from chroma_studio.hardware.memory import Assumptions, estimate_memory
from chroma_studio.hardware.phases import MemoryEstimate
from chroma_studio.hardware.streaming import StreamingCost

SLOWDOWN_LIMIT = 0.5  # a better precision is worth up to 50% more time per step


@dataclass(frozen=True)
class Fit:
    config: TrainingConfig
    estimate: MemoryEstimate
    cost: StreamingCost | None = None  # where blocks stream

    @property
    def blocks(self) -> int:
        return self.config.model.blocks_to_swap


@dataclass(frozen=True)
class PassedOver:
    """A better option the search did not take: its pinned copies exceed the RAM, or it is too slow."""

    fit: Fit
    why: Literal["ram", "slow"]


def cost_of(config: TrainingConfig, device: DeviceInfo) -> StreamingCost | None:
    """The modelled cost of ``config``'s streamed blocks on ``device`` (None when none stream)."""
    return streaming.step_cost(
        config,
        chroma_architecture(),
        kind=device.kind,
        memory_bytes=device.total_bytes,
        pcie=device.pcie,
        text_tokens=Assumptions().text_tokens,
    )


def search(candidates: Iterable[list[TrainingConfig]], budget: Budget) -> tuple[Fit | None, list[PassedOver]]:
    """The first option that fits, from groups of candidates in quality order (one group per resolution).

    Within a group the first fit is taken; where every option of a group that fits the device streams
    too slowly, the least slow of them is taken rather than a lower resolution.
    """
    passed: list[PassedOver] = []
    for group in candidates:
        slow: list[Fit] = []
        for config in group:
            outcome = fit_one(config, budget)
            if isinstance(outcome, Fit):
                return outcome, passed
            if outcome is not None:
                passed.append(outcome)
                if outcome.why == "slow":
                    slow.append(outcome.fit)
        if slow:
            return min(slow, key=lambda f: f.cost.slowdown if f.cost else 0.0), passed
    return None, passed


def fit_one(config: TrainingConfig, budget: Budget) -> Fit | PassedOver | None:
    """``config`` as it fits ``budget``: as it is, by streaming the fewest blocks, or not at all (None).
    Several processes (``num_processes``) never stream: ``validate()`` refuses the two together."""
    estimate = estimate_memory(config, budget.device)
    if budget.shortfall(estimate) == 0:
        return Fit(config, estimate)
    if budget.device_shortfall(estimate) == 0:
        return None  # short of RAM only: streaming would need more of it
    if not streams(config, budget.device.kind, config.model.base_model_precision):
        return None
    blocks = fewest_blocks(config, budget)
    if blocks is None:
        return None
    config = config.replace(blocks_to_swap=blocks)
    fit = Fit(config, estimate_memory(config, budget.device), cost_of(config, budget.device))
    if budget.ram_short(fit.estimate):
        return PassedOver(fit, "ram")
    if fit.cost is not None and fit.cost.slowdown > SLOWDOWN_LIMIT:
        return PassedOver(fit, "slow")
    return fit


def streams(config: TrainingConfig, kind: str, precision: str) -> bool:
    """Whether ``config``'s blocks could stream at ``precision`` on this kind of device."""
    return config.run.num_processes <= 1 and streaming.applies(kind, precision)


def fewest_blocks(config: TrainingConfig, budget: Budget) -> int | None:
    """The fewest streamed blocks with which ``config`` fits the device; None when even all do not do.

    The device's saving grows with the number streamed (a double block entering the stream doubles
    the buffers but frees as much), so a binary search finds it.
    """

    def fits(k: int) -> bool:
        return budget.device_shortfall(estimate_memory(config.replace(blocks_to_swap=k), budget.device)) == 0

    arch = chroma_architecture()
    low, high = 1, arch.double_blocks + arch.single_blocks
    if not fits(high):
        return None
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return low


def use_headroom(fit: Fit, budget: Budget) -> Fit:
    """Spend memory left over: a larger batch first (steadier gradients), then checkpointing off (faster).

    Checkpointing stays on while blocks stream: the streamer needs the recompute.
    """
    best = fit
    for batch in (4, 2):
        option = fit.config.replace(train_batch_size=batch)
        estimate = estimate_memory(option, budget.device)
        if budget.shortfall(estimate) == 0:
            best = Fit(option, estimate, cost_of(option, budget.device))
            break
    if best.blocks:
        return best
    option = best.config.replace(gradient_checkpointing=False)
    estimate = estimate_memory(option, budget.device)
    if budget.shortfall(estimate) == 0:
        best = replace(best, config=option, estimate=estimate)
    return best
