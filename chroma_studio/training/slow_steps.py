"""Noticing a step that is suddenly slow while the GPU's memory is nearly full.

On Windows the NVIDIA driver can turn running out of GPU memory into a silent move of memory to
system RAM ("CUDA Sysmem Fallback Policy"): nothing fails, every step just takes 2-10 times as
long. A step that takes more than twice the recent median while the device is over ~90% full is
most likely that, so the run says once what to change. The decision is a pure function; the
device is asked about its memory only when a step is slow.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Sequence

import torch

SLOW_FACTOR = 2.0  # a step this many times the recent median is slow
NEAR_FULL = 0.9  # share of the device's memory in use that counts as near its limit
MIN_HISTORY = 5  # steps of history before any step is called slow
HISTORY = 20  # the recent steps the median is taken over


def is_slow(seconds: float, recent: Sequence[float]) -> bool:
    return len(recent) >= MIN_HISTORY and seconds > SLOW_FACTOR * statistics.median(recent)


def slow_step_hint(step: int, seconds: float, recent: Sequence[float], memory_used: float | None) -> str | None:
    """The warning for a step of ``seconds`` after steps that took ``recent``, with ``memory_used``
    (0-1) of the device's memory in use (None: unknown, as on the CPU); None when there is nothing
    to say."""
    if not is_slow(seconds, recent) or memory_used is None or memory_used <= NEAR_FULL:
        return None
    median = statistics.median(recent)
    return (
        f"Step {step} took {seconds:.1f} s, more than twice the recent {median:.1f} s, while the GPU's memory "
        f"is {memory_used:.0%} full: the driver may be moving memory to system RAM. On Windows, NVIDIA's "
        '"CUDA Sysmem Fallback Policy" turns running out of memory into a silent 2-10x slowdown: in the NVIDIA '
        'Control Panel, under Manage 3D settings, set it to "Prefer No Sysmem Fallback". If the run then runs '
        "out of memory, lower the resolution, choose int4-quanto, or stream more blocks (blocks_to_swap)."
    )


def device_memory_used(device: torch.device) -> float | None:
    """The share of ``device``'s memory in use, as the driver reports it; None where unknown."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return 1.0 - free / total if total else None


class SlowStepWatch:
    """Recent step times; ``observe`` returns the hint the first time a step is slow near the memory limit."""

    def __init__(self, memory_used: Callable[[], float | None]) -> None:
        self.memory_used = memory_used
        self.recent: deque[float] = deque(maxlen=HISTORY)
        self.warned = False

    def observe(self, step: int, seconds: float) -> str | None:
        hint = None
        if not self.warned and is_slow(seconds, self.recent):
            hint = slow_step_hint(step, seconds, self.recent, self.memory_used())
            self.warned = hint is not None
        self.recent.append(seconds)
        return hint
