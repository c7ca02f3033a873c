"""What the engine tells its caller while it runs: frozen dataclasses, sent to ``sink(event)``.

The CLI prints them; the app's engine process writes them as JSON lines (``to_message``) and the
window reads them back (``from_message``). They hold only plain values (no tensors), so they are
safe to hand to another thread or process and to log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PhaseChanged:
    """The run entered a phase: loading, caching, training, sampling, saving, finished."""

    phase: str
    detail: str = ""


@dataclass(frozen=True)
class Progress:
    """Progress of a long task inside a phase (a download, caching latents). ``total`` 0 = unknown."""

    task: str
    done: int
    total: int
    unit: str = ""


@dataclass(frozen=True)
class RunPlanned:
    """The resolved plan, sent once before training starts."""

    total_steps: int
    start_step: int
    images: int
    steps_per_epoch: int
    trainable_parameters: int
    lora_modules: int


@dataclass(frozen=True)
class StepLogged:
    """One optimizer step finished. ``sigmas`` are the noise levels sampled for its micro-batches."""

    step: int
    total_steps: int
    loss: float
    lr: float
    sigma: tuple[float, ...]
    seconds: float
    epoch: int = 0


@dataclass(frozen=True)
class SampleReady:
    step: int
    prompt: str
    path: str
    seed: int
    prompt_index: int = 0


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class MemoryReport:
    """Device memory in bytes (allocated now, peak so far); 0 where the backend cannot tell."""

    device: str
    allocated: int
    peak: int


@dataclass(frozen=True)
class LogMessage:
    level: str
    message: str


@dataclass(frozen=True)
class Finished:
    step: int
    output_dir: str
    lora_path: str | None
    stopped: bool = False
    files: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Failed:
    """The run could not go on. ``topic`` says where the fix is: "dataset", "settings", "model",
    "memory", or "" (unknown)."""

    message: str
    hint: str
    traceback: str = ""
    topic: str = ""


Event = (
    PhaseChanged
    | Progress
    | RunPlanned
    | StepLogged
    | SampleReady
    | CheckpointSaved
    | MemoryReport
    | LogMessage
    | Finished
    | Failed
)
Sink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """A sink that drops everything."""


QUIET_PHASES = ("training", "sampling", "saving", "finished")  # shown as status, not logged


def log_lines(event: Event) -> list[tuple[str, str]]:
    """What a run's log says about ``event``: (level, message) pairs, the same in the app and log.txt."""
    if isinstance(event, PhaseChanged):
        if event.phase in QUIET_PHASES:
            return []
        name = event.phase.capitalize()
        if not event.detail or event.detail.lower().startswith(event.phase):  # "Paused at step 5"
            return [("info", event.detail or name)]
        return [("info", f"{name}: {event.detail}")]
    if isinstance(event, RunPlanned):
        return [
            (
                "info",
                f"Training {event.total_steps} steps on {event.images} images "
                f"({event.lora_modules} LoRA layers, {event.trainable_parameters / 1e6:.2f}M parameters).",
            )
        ]
    if isinstance(event, CheckpointSaved):
        return [("info", f"Checkpoint saved at step {event.step}: {event.path}")]
    if isinstance(event, LogMessage):
        return [(event.level, event.message)]
    if isinstance(event, Finished):
        return [("info", f"{'Stopped' if event.stopped else 'Finished'} at step {event.step}.")]
    if isinstance(event, Failed):
        return [("error", event.message), *([("hint", event.hint)] if event.hint else [])]
    return []


def log_text(level: str, message: str) -> str:
    """A log line's text after its time stamp: the level is said unless it is plain information."""
    return message if level == "info" else f"{level.upper()}: {message}"


@dataclass(frozen=True)
class RunResult:
    """How ``run_training`` ended; ``failure`` is the ``Failed`` event it sent, if any."""

    status: str  # "finished" | "stopped" | "failed"
    step: int
    output_dir: str
    lora_path: str | None = None
    failure: Failed | None = None


_MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        PhaseChanged,
        Progress,
        RunPlanned,
        StepLogged,
        SampleReady,
        CheckpointSaved,
        MemoryReport,
        LogMessage,
        Finished,
        Failed,
        RunResult,
    )
}


def to_message(item: Event | RunResult) -> dict[str, Any]:
    """An event (or a run's result) as a JSON-ready dict: ``{"type": name, **fields}``."""
    return {"type": type(item).__name__, **dataclasses.asdict(item)}


def from_message(message: dict[str, Any]) -> Event | RunResult:
    """The event ``to_message`` wrote. Raises ValueError for anything else."""
    data = dict(message)
    cls = _MESSAGE_TYPES.get(str(data.pop("type", "")))
    if cls is None:
        raise ValueError(f"not an engine event: {message!r}")
    kwargs: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.name not in data:
            continue
        value = data[spec.name]
        if isinstance(value, list):  # JSON has no tuples
            value = tuple(value)
        elif spec.name == "failure" and isinstance(value, dict):
            value = Failed(**value)
        kwargs[spec.name] = value
    return cls(**kwargs)
