"""The dataset layer: finding images and captions, checking them, editing captions, bucketing.

Pure Python with Pillow and numpy (no Qt, no torch), shared by the app, the CLI and the trainer:

- ``scan``: ``scan_folders`` -> ``ImageRecord`` per usable image (size from headers), ``ScanProblem``s
- ``captions``: ``read_caption`` / ``write_caption`` (atomic, keeps the file's style), ``CaptionError``
- ``caption_ops``: bulk operations (trigger word, prefix/suffix, find/replace, whitespace) with previews
- ``caption_history``: applying previews, with undo and redo
- ``checks``: ``check_dataset`` -> ``CheckReport`` of ``Finding``s; never modifies anything
- ``buckets``: aspect-ratio buckets for a resolution
- ``images``: ``load_training_image`` for the trainer
"""

from chroma_studio.dataset.buckets import assign_buckets, bucket_for, bucket_histogram, bucket_sizes
from chroma_studio.dataset.caption_history import CaptionEdit, CaptionHistory, apply_changes, revert_edit
from chroma_studio.dataset.caption_ops import (
    CaptionChange,
    CaptionOperation,
    CaptionPreview,
    OperationError,
    add_prefix,
    add_suffix,
    add_trigger_word,
    find_replace,
    normalise_whitespace,
    preview_operation,
    remove_trigger_word,
)
from chroma_studio.dataset.captions import CaptionError, caption_paths, read_caption, write_caption
from chroma_studio.dataset.checks import CheckReport, Finding, check_dataset
from chroma_studio.dataset.images import load_training_image
from chroma_studio.dataset.scan import ImageRecord, ScanProblem, ScanResult, scan_folders

__all__ = [
    "CaptionChange",
    "CaptionEdit",
    "CaptionError",
    "CaptionHistory",
    "CaptionOperation",
    "CaptionPreview",
    "CheckReport",
    "Finding",
    "ImageRecord",
    "OperationError",
    "ScanProblem",
    "ScanResult",
    "add_prefix",
    "add_suffix",
    "add_trigger_word",
    "apply_changes",
    "assign_buckets",
    "bucket_for",
    "bucket_histogram",
    "bucket_sizes",
    "caption_paths",
    "check_dataset",
    "find_replace",
    "load_training_image",
    "normalise_whitespace",
    "preview_operation",
    "read_caption",
    "remove_trigger_word",
    "revert_edit",
    "scan_folders",
    "write_caption",
]
