"""Every failure reaches the user as words with a hint saying what to change."""

import errno

import torch

from chroma_studio.training.errors import TrainingError, describe_failure


def test_out_of_memory_suggests_quantization_and_lower_resolution():
    failed = describe_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert failed.message == "The GPU ran out of memory."
    assert "int8 or int4" in failed.hint and "resolution" in failed.hint
    mps = describe_failure(RuntimeError("MPS backend out of memory (MPS allocated: 17.5 GB)"))
    assert mps.message == "The GPU ran out of memory."


def test_disk_full_and_permission_name_the_file():
    full = describe_failure(OSError(errno.ENOSPC, "No space left on device", "/runs/a/lora.safetensors"))
    assert "/runs/a/lora.safetensors" in full.message and "Free some disk space" in full.hint
    named = describe_failure(OSError(errno.ENOSPC, "No space left on device"), "/runs/a")
    assert "/runs/a" in named.message and not named.traceback
    denied = describe_failure(PermissionError(errno.EACCES, "Permission denied", "/runs/b"))
    assert "/runs/b" in denied.message and "write to" in denied.hint


def test_hub_errors_explain_what_to_do():
    from huggingface_hub.errors import LocalEntryNotFoundError

    failed = describe_failure(LocalEntryNotFoundError("not in cache"))
    assert "HF_ENDPOINT" in failed.hint and "offline" in failed.hint


def test_written_errors_keep_their_hint_and_unexpected_ones_their_traceback():
    try:
        raise TrainingError("Bad thing.", "Do this.")
    except TrainingError as exc:
        failed = describe_failure(exc)
    assert (failed.message, failed.hint, failed.traceback) == ("Bad thing.", "Do this.", "")
    unexpected = describe_failure(ValueError("odd"))
    assert unexpected.hint.startswith("This is unexpected") and "ValueError: odd" in unexpected.traceback
