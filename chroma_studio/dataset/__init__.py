"""The dataset layer: finding images and captions, checking them, editing captions, bucketing.

Pure Python with Pillow and numpy (no Qt, no torch), shared by the app, the CLI and the trainer:

- ``scan``: ``scan_folders`` -> ``ImageRecord`` per usable image (size from headers), ``ScanProblem``s;
  progress and a stop switch for long scans
- ``captions``: ``read_caption`` / ``write_caption`` (atomic, keeps the file's style), ``CaptionError``
- ``caption_ops``: bulk operations (trigger word, prefix/suffix, find/replace, whitespace) with previews
- ``caption_history``: applying previews (all or nothing, with progress and a stop switch), undo, redo
- ``checks``: ``check_dataset`` -> ``CheckReport`` of ``Finding``s; never modifies anything
- ``buckets``: aspect-ratio buckets for a resolution
- ``sizes``: ``size_problem`` / ``size_fit``, the per-image size rule shared by the check and the app
- ``images``: ``load_training_image`` for the trainer
"""

from chroma_studio.dataset.buckets import assign_buckets, bucket_for, bucket_histogram, bucket_sizes
from chroma_studio.dataset.caption_history import (
    CaptionEdit,
    CaptionHistory,
    EditCancelled,
    apply_changes,
    revert_edit,
)
from chroma_studio.dataset.caption_ops import (
    CaptionChange,
    CaptionOperation,
    CaptionPreview,
    OperationError,
    add_prefix,
    add_suffix,
    add_trigger_word,
    contains_word,
    find_replace,
    normalise_whitespace,
    preview_operation,
    remove_trigger_word,
)
from chroma_studio.dataset.captions import (
    CaptionError,
    caption_paths,
    read_caption,
    read_caption_if_present,
    write_caption,
)
from chroma_studio.dataset.checks import CheckReport, Finding, check_dataset
from chroma_studio.dataset.images import load_training_image
from chroma_studio.dataset.rules import image_findings, trains
from chroma_studio.dataset.scan import (
    ImageRecord,
    ScanProblem,
    ScanProgress,
    ScanResult,
    caption_path_for,
    image_extensions,
    scan_folders,
)
from chroma_studio.dataset.sizes import (
    BELOW_RESOLUTION,
    HUGE_PIXELS,
    TOO_SMALL,
    TOO_SMALL_UPSCALE,
    SizeFit,
    is_huge,
    size_fit,
    size_problem,
)

__all__ = [
    "BELOW_RESOLUTION",
    "HUGE_PIXELS",
    "TOO_SMALL",
    "TOO_SMALL_UPSCALE",
    "CaptionChange",
    "CaptionEdit",
    "CaptionError",
    "CaptionHistory",
    "CaptionOperation",
    "CaptionPreview",
    "CheckReport",
    "EditCancelled",
    "Finding",
    "ImageRecord",
    "OperationError",
    "ScanProblem",
    "ScanProgress",
    "ScanResult",
    "SizeFit",
    "add_prefix",
    "add_suffix",
    "add_trigger_word",
    "apply_changes",
    "assign_buckets",
    "bucket_for",
    "bucket_histogram",
    "bucket_sizes",
    "caption_path_for",
    "caption_paths",
    "check_dataset",
    "contains_word",
    "find_replace",
    "image_extensions",
    "image_findings",
    "is_huge",
    "load_training_image",
    "normalise_whitespace",
    "preview_operation",
    "read_caption",
    "read_caption_if_present",
    "remove_trigger_word",
    "revert_edit",
    "scan_folders",
    "size_fit",
    "size_problem",
    "trains",
    "write_caption",
]
