"""What the engine tells its caller while it runs: frozen dataclasses, sent to ``sink(event)``.

The CLI prints them; the app's engine process writes them as JSON lines (``to_message``) and the
window reads them back (``from_message``). They hold only plain values (no tensors), so they are
safe to hand to another thread or process and to log. Closed sets (phases, log levels, failure
topics, run statuses) are string enums: a message carries the plain string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chroma_studio.base.text import display_text
from chroma_studio.dataset.findings import Finding
from chroma_studio.protocol.codec import StrEnum, coerce_enums, decode_fields, encode


class Phase(StrEnum):
    """What a run is doing (``PhaseChanged.phase``)."""

    LOADING = "loading"
    CACHING = "caching"
    TRAINING = "training"
    SAMPLING = "sampling"
    SAVING = "saving"
    CAPTIONING = "captioning"
    PAUSED = "paused"
    FINISHED = "finished"


class LogLevel(StrEnum):
    """How a line of a run's log reads: plain information, a warning, an error, or its hint."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    HINT = "hint"


class FailureTopic(StrEnum):
    """Where the fix for a failure is (``Failed.topic``)."""

    DATASET = "dataset"
    SETTINGS = "settings"
    MODEL = "model"
    MEMORY = "memory"
    UNKNOWN = ""


class RunStatus(StrEnum):
    """Where a run stands, as its caller sees it. A ``RunResult`` holds one of the last three."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A run is under way (its process may still be working)."""
        return self in _ACTIVE


_ACTIVE = frozenset({RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.STOPPING})


@dataclass(frozen=True)
class PhaseChanged:
    """The run entered a phase: loading, caching, training, sampling, saving, captioning, paused, finished."""

    phase: Phase
    detail: str = ""

    def __post_init__(self) -> None:
        coerce_enums(self)


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
    """One optimizer step finished. ``sigma`` holds the noise levels sampled for its micro-batches."""

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
    level: LogLevel
    message: str  # display text: a file name that is not UTF-8 shows U+FFFD (see base.text)

    def __post_init__(self) -> None:
        coerce_enums(self)
        object.__setattr__(self, "message", display_text(self.message))


@dataclass(frozen=True)
class Finished:
    step: int
    output_dir: str
    lora_path: str | None
    stopped: bool = False
    files: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Failed:
    """The job could not go on. ``topic`` says where the fix is."""

    message: str
    hint: str
    traceback: str = ""
    topic: FailureTopic = FailureTopic.UNKNOWN

    def __post_init__(self) -> None:
        coerce_enums(self)
        for name in ("message", "hint", "traceback"):  # display text, so it can be encoded and shown
            object.__setattr__(self, name, display_text(getattr(self, name)))


@dataclass(frozen=True)
class DatasetChecked:
    """The dataset check's findings (``dataset.check_dataset``) over ``images`` usable images.

    ``cancelled``: the check was stopped part-way; the findings are those made until then.
    """

    findings: tuple[Finding, ...]
    images: int
    cancelled: bool = False


@dataclass(frozen=True)
class CaptionMade:
    """A captioning job's caption for ``image`` (the ``index``-th of ``total``, from 0); the asker writes it."""

    image: str
    caption: str
    index: int
    total: int


@dataclass(frozen=True)
class CaptionSkipped:
    """An image the captioner could not read (damaged, not an image): ``reason`` says what to do."""

    image: str
    reason: str


@dataclass(frozen=True)
class CaptioningFinished:
    """How a captioning job ended: captions made, images skipped, and whether it was stopped early."""

    made: int
    skipped: int
    cancelled: bool = False
    seconds: float = 0.0


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
    | DatasetChecked
    | CaptionMade
    | CaptionSkipped
    | CaptioningFinished
)
Sink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """A sink that drops everything."""


QUIET_PHASES = frozenset({Phase.TRAINING, Phase.SAMPLING, Phase.SAVING, Phase.FINISHED})  # status, not log


def log_lines(event: Event) -> list[tuple[LogLevel, str]]:
    """What a run's log says about ``event``: (level, message) pairs, the same in the app and log.txt."""
    match event:
        case PhaseChanged(phase=phase, detail=detail):
            if phase in QUIET_PHASES:
                return []
            name = phase.capitalize()
            if not detail or detail.lower().startswith(phase):  # "Paused at step 5"
                return [(LogLevel.INFO, detail or name)]
            return [(LogLevel.INFO, f"{name}: {detail}")]
        case RunPlanned():
            return [
                (
                    LogLevel.INFO,
                    f"Training {event.total_steps} steps on {event.images} images "
                    f"({event.lora_modules} LoRA layers, {event.trainable_parameters / 1e6:.2f}M parameters).",
                )
            ]
        case CheckpointSaved(step=step, path=path):
            return [(LogLevel.INFO, f"Checkpoint saved at step {step}: {path}")]
        case LogMessage(level=level, message=message):
            return [(level, message)]
        case Finished(step=step, stopped=stopped):
            return [(LogLevel.INFO, f"{'Stopped' if stopped else 'Finished'} at step {step}.")]
        case Failed(message=message, hint=hint):
            return [(LogLevel.ERROR, message), *([(LogLevel.HINT, hint)] if hint else [])]
    return []


def log_text(level: str, message: str) -> str:
    """A log line's text after its time stamp: the level is said unless it is plain information."""
    return message if level == LogLevel.INFO else f"{level.upper()}: {message}"


@dataclass(frozen=True)
class RunResult:
    """How ``run_training`` ended; ``failure`` is the ``Failed`` event it sent, if any."""

    status: RunStatus  # FINISHED, STOPPED or FAILED
    step: int
    output_dir: str
    lora_path: str | None = None
    failure: Failed | None = None

    def __post_init__(self) -> None:
        coerce_enums(self)


Message = Event | RunResult

_MESSAGE_TYPES: dict[str, type[Message]] = {
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
        DatasetChecked,
        CaptionMade,
        CaptionSkipped,
        CaptioningFinished,
        RunResult,
    )
}


def to_message(item: Message) -> dict[str, Any]:
    """An event (or a run's result) as a JSON-ready dict: ``{"type": name, **fields}``."""
    fields: dict[str, Any] = encode(item)
    return {"type": type(item).__name__, **fields}


def from_message(message: dict[str, Any]) -> Message:
    """The event ``to_message`` wrote. Raises ValueError for anything else."""
    data = dict(message)
    cls = _MESSAGE_TYPES.get(str(data.pop("type", "")))
    if cls is None:
        raise ValueError(f"not an engine event: {message!r}")
    try:
        return decode_fields(cls, data)
    except ValueError as exc:
        raise ValueError(f"a malformed {cls.__name__} event ({exc}): {message!r}") from None
