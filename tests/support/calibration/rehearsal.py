"""Watching an engine run's memory, phase by phase, for the real-size rehearsal (Linux only).

``AnonWatcher`` samples the process's RssAnon from a thread and at every phase change;
``use_transposed_weight_in_backward`` speeds up quanto's backward on CPUs without AVX-512.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from support.calibration.checkpoint import status_bytes

GiB = 2**30


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise KeyError("MemAvailable")


def wait_for_ram(need: int, minutes: float) -> bool:
    """Wait until ``need`` bytes are available (the machine may be shared); False after ``minutes``."""
    deadline = time.monotonic() + minutes * 60
    while available_bytes() < need:
        if time.monotonic() > deadline:
            return False
        log(f"waiting for RAM: {available_bytes() / GiB:.1f} GB available, {need / GiB:.1f} GB wanted")
        time.sleep(20)
    return True


class AnonWatcher:
    """Peak and last RssAnon of this process per engine phase, sampled by a thread and at changes."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.phase = "startup"
        self.peaks: dict[str, int] = {}
        self.at_end: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._since = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        value = status_bytes("RssAnon")
        with self._lock:
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), value)
        return value

    def enter(self, phase: str) -> None:
        value = self.sample()
        with self._lock:
            now = time.perf_counter()
            self.at_end[self.phase] = value
            self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + now - self._since
            self.phase, self._since = phase, now
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> AnonWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.enter("end")


def engine_phase(event: Any, current: str) -> str:
    """The watcher's phase name for a PhaseChanged event; loading before caching is "startup"."""
    phase, detail = str(event.phase.value if hasattr(event.phase, "value") else event.phase), event.detail
    if phase == "loading":
        return "loading" if detail.startswith("Loading the transformer") else "startup"
    return phase


def use_transposed_weight_in_backward() -> None:
    """Make quanto's input gradient ``gO @ W`` a product with W transposed and contiguous.

    Only the speed changes: torch's reference bf16 kernel (CPUs without AVX-512) is ~15x slower for
    the untransposed layout. The transposed copy is one more transient weight (75 MB at most).
    """
    import torch
    from optimum.quanto.tensor.function import QuantizedLinearFunction

    def backward(ctx: Any, grad: Any) -> Any:
        inputs, weight = ctx.saved_tensors
        grads = [None, None, None]
        if ctx.needs_input_grad[0]:
            plain = weight.dequantize() if hasattr(weight, "dequantize") else weight
            grads[0] = torch.nn.functional.linear(grad, plain.t().contiguous())
        if ctx.needs_input_grad[1]:
            out_features, in_features = weight.shape
            grads[1] = grad.reshape(-1, out_features).t() @ inputs.reshape(-1, in_features)
        if ctx.needs_input_grad[2]:
            grads[2] = grad.sum(tuple(range(grad.ndim - 1)))
        return tuple(grads)

    QuantizedLinearFunction.backward = staticmethod(backward)  # type: ignore[method-assign]
