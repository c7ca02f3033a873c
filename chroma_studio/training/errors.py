"""Turning an exception into words a user can act on: ``Failed(message, hint, traceback)``."""

from __future__ import annotations

import errno
import os
import traceback

from chroma_studio.protocol.events import Failed


class TrainingError(Exception):
    """An error whose message and hint are already written for the user."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "mps backend out of memory" in text


def describe_failure(exc: BaseException, output_dir: str | os.PathLike | None = None) -> Failed:
    """The Failed event for ``exc``, with a hint that says what to change; ``output_dir`` is the
    folder the run writes to, named when the disk it is on is full."""
    from chroma_studio.base.run_lock import RunFolderInUse
    from chroma_studio.config import ConfigError
    from chroma_studio.training.checkpoint import CheckpointError
    from chroma_studio.training.data import DatasetError
    from chroma_studio.training.loading import ModelSourceError

    trace = "".join(traceback.format_exception(exc))
    message = str(exc) or type(exc).__name__
    # Errors written for the user carry no traceback: it would only bury the message.
    if isinstance(exc, TrainingError):
        return Failed(message, exc.hint)
    if isinstance(exc, RunFolderInUse):
        if exc.owner_pid is None:
            return Failed(message, "Try again in a moment.")
        return Failed(
            message,
            "A stopped run first saves its checkpoint and LoRA: wait a moment and try again, or "
            "train into another output folder.",
        )
    if isinstance(exc, ConfigError):
        return Failed(message, "Fix the settings named above and start again.", topic="settings")
    if isinstance(exc, DatasetError):
        return Failed(message, "Check the dataset folders, then start again.", topic="dataset")
    if isinstance(exc, ModelSourceError):
        return Failed(message, "Check the model paths in the settings.", topic="model")
    if isinstance(exc, CheckpointError):
        return Failed(
            message,
            "Do as the message says: resume from another checkpoint or with the settings it was made with, "
            "or train into a new output folder.",
        )
    if _is_oom(exc):
        return Failed(
            "The GPU ran out of memory.",
            "Choose int8 or int4 quantization (base_model_precision), lower the resolution or the LoRA rank, "
            "turn on gradient checkpointing, or set offload_during_startup.",
            trace,
            topic="memory",
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        # Complete as it stands: it names what could not be written and the folder, with no traceback.
        folder = f"the output folder {output_dir}" if output_dir is not None else "the output folder"
        if exc.filename:
            what = f"{exc.filename} could not be written" + (f" ({folder})" if output_dir is not None else "")
        else:
            what = f"nothing more can be written to {folder}"
        return Failed(
            f"The disk is full: {what}.",
            "Free some disk space or choose an output folder on another drive; earlier checkpoints are intact.",
        )
    if isinstance(exc, PermissionError):
        return Failed(
            f"Cannot write {exc.filename or 'a file'}: permission denied.",
            "Choose an output folder you can write to.",
            trace,
        )
    hub = _hub_hint(exc)
    if hub:
        return Failed(message, hub, trace)
    return Failed(message, "This is unexpected; the details below help to report it.", trace)


def _hub_hint(exc: BaseException) -> str:
    try:
        from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return ""
    if isinstance(exc, GatedRepoError):
        return "This model needs you to accept its terms on huggingface.co and log in (hf auth login)."
    if isinstance(exc, RepositoryNotFoundError):
        return "The Hub id was not found. Check pretrained_model_name_or_path."
    if isinstance(exc, LocalEntryNotFoundError):
        return (
            "The model is not downloaded and the Hub cannot be reached (offline, or HF_HUB_OFFLINE is set). "
            "Connect to the internet, set HF_ENDPOINT to a mirror, or choose local model files."
        )
    return ""
