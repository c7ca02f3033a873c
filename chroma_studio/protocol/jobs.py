"""What the app asks the engine process to do: one frozen dataclass per kind of job.

A job travels as the first line the process reads, ``job.to_message()`` as JSON:
``{"job": "<kind>", **fields}``; the process rebuilds it with ``job_from_message`` and runs it with
one ``match`` (``training/child.py``). Adding a kind of job takes a dataclass here (subclassing
``EngineJob`` with its ``kind``) and a case there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from chroma_studio.protocol.codec import StrEnum, coerce_enums, decode_fields, encode

_KINDS: dict[str, type[EngineJob]] = {}


class JobError(ValueError):
    """A job message the engine cannot run: an unknown kind, or fields that do not fit it."""


class EngineJob:
    """The base of every job; ``kind`` is its name on the wire."""

    kind: ClassVar[str]

    def __init_subclass__(cls, *, kind: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind in _KINDS:
            raise TypeError(f"two jobs named {kind!r}: {_KINDS[kind].__name__} and {cls.__name__}")
        cls.kind = kind
        _KINDS[kind] = cls

    def to_message(self) -> dict[str, Any]:
        """The job as a JSON-ready dict, ``{"job": kind, **fields}``."""
        fields: dict[str, Any] = encode(self)
        return {"job": self.kind, **fields}


class ExportFormat(StrEnum):
    """The layout of an exported LoRA file."""

    DIFFUSERS = "diffusers"  # diffusers and ComfyUI (pytorch_lora_weights)
    KOHYA = "kohya"


@dataclass(frozen=True)
class TrainJob(EngineJob, kind="train"):
    """A training run; the result is a ``RunResult``."""

    config: dict[str, Any]  # the flat config, ``TrainingConfig.to_dict()``


@dataclass(frozen=True)
class PrepareJob(EngineJob, kind="prepare"):
    """Fetch (or build, for the demo) every model file a config needs; the result is the model's name."""

    config: dict[str, Any]


@dataclass(frozen=True)
class ExportJob(EngineJob, kind="export"):
    """Write the LoRA of a run's checkpoint (``step`` None: the newest); the result is the file's path."""

    run_dir: str
    step: int | None = None
    format: ExportFormat = ExportFormat.DIFFUSERS

    def __post_init__(self) -> None:
        coerce_enums(self)


@dataclass(frozen=True)
class DatasetCheckJob(EngineJob, kind="check-dataset"):
    """Decode and hash every image of ``folders`` for damage and duplicates at ``resolution``;
    progress comes as ``Progress`` events, the result is a ``DatasetChecked`` event."""

    folders: tuple[str, ...]
    resolution: int = 1024

    def __post_init__(self) -> None:
        if isinstance(self.folders, str) or not isinstance(self.folders, Sequence):
            raise TypeError(f"folders must be a list of folders, not {self.folders!r}")
        object.__setattr__(self, "folders", tuple(str(folder) for folder in self.folders))


class CaptionStyle(StrEnum):
    """What a captioner writes: sentences, comma-separated tags, or sentences then tags."""

    NATURAL = "natural"
    TAGS = "tags"
    BOTH = "both"


class CaptionLength(StrEnum):
    """How long a caption the captioner is asked for."""

    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


@dataclass(frozen=True)
class CaptionJob(EngineJob, kind="caption"):
    """Caption ``images`` with the captioner ``model`` (a name from ``dataset/captioners.py``).

    The engine never writes a caption file in this job: each caption comes back as a
    ``CaptionMade`` event (an unreadable image as ``CaptionSkipped``) and the asker writes it (the
    app through its caption history, the command line through the same writer), so what reaches
    the dataset folder is decided in one place. Model downloads report ``Progress``. After
    ``pause_after`` captions (0: never) the job pauses, as a paused run does, until it is resumed
    or stopped: the app shows the first captions before the rest are made. The result is a
    ``CaptioningFinished`` event.
    """

    images: tuple[str, ...]
    model: str = "demo"
    style: CaptionStyle = CaptionStyle.NATURAL
    length: CaptionLength = CaptionLength.MEDIUM
    trigger: str = ""  # placed first, or after the class word's first "a/the <class>"
    class_word: str = ""
    prefix: str = ""
    suffix: str = ""
    pause_after: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.images, str) or not isinstance(self.images, Sequence):
            raise TypeError(f"images must be a list of image files, not {self.images!r}")
        object.__setattr__(self, "images", tuple(str(image) for image in self.images))
        coerce_enums(self)


def job_kinds() -> list[str]:
    """The names of every kind of job, as messages carry them."""
    return sorted(_KINDS)


def job_from_message(message: dict[str, Any]) -> EngineJob:
    """The job ``to_message`` wrote. Raises ``JobError`` saying what is wrong with anything else."""
    if not isinstance(message, dict):
        raise JobError(f"a job is a JSON object, not {message!r}")
    data = dict(message)
    kind = data.pop("job", None)
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise JobError(f"unknown job {kind!r}: the engine runs {', '.join(job_kinds())}")
    try:
        return decode_fields(cls, data, strict=True)
    except (TypeError, ValueError) as exc:
        raise JobError(f"a malformed {kind!r} job: {exc}") from None
