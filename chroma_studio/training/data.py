"""The training examples and the order they are seen in.

The order is a pure function of the seed and the epoch, so a resumed run sees exactly the
batches an uninterrupted run would have seen: the position in the data is just the number of
micro-batches done.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chroma_studio.config import TrainingConfig


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message names the folder and what to do."""


@dataclass(frozen=True)
class Example:
    image: Path
    caption: str
    bucket: tuple[int, int]  # (width, height) in pixels
    repeats: int = 1


def load_examples(config: TrainingConfig) -> tuple[list[Example], list[str]]:
    """Scan the dataset folders; return the examples and warnings. Raises DatasetError if none.

    Each image is judged by ``dataset.rules`` (as the dataset check and the Dataset page judge
    it): every finding becomes a warning in the check's words, and an image with an error is
    left out. Warnings are display text (see ``base.text``), safe to print and log.
    """
    from chroma_studio.base.text import display_text
    from chroma_studio.dataset.buckets import bucket_for
    from chroma_studio.dataset.captions import CaptionError, read_caption_if_present
    from chroma_studio.dataset.rules import Caption, image_findings, trains
    from chroma_studio.dataset.scan import scan_folders

    folders = config.data.dataset_dirs
    if not folders:
        raise DatasetError("No image folder is set. Add a folder of images (dataset_dirs) and start again.")
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        raise DatasetError(
            f"Image folder not found: {display_text(missing[0])}. Check the path or remove it from dataset_dirs."
        )
    resolution = config.data.resolution
    result = scan_folders(folders, follow_links=config.data.follow_links)
    warnings = [display_text(str(p)) for p in result.problems]
    examples = []
    for record in result.images:
        caption: Caption
        try:
            caption = read_caption_if_present(record.caption_path)
        except CaptionError as exc:
            caption = exc
        findings = image_findings(record, resolution, caption)
        warnings += [display_text(str(finding)) for finding in findings]
        if not trains(findings):
            continue
        text = caption if isinstance(caption, str) else ""
        bucket = bucket_for(record.width, record.height, resolution)
        examples.append(Example(record.path, text, bucket, max(1, record.repeats)))
    if not examples:
        raise DatasetError(
            f"No usable images in {display_text(', '.join(folders))}. Add images (JPEG, PNG, WebP and other common"
            " formats), each with its caption in a .txt file of the same name."
        )
    return examples, warnings


@dataclass(frozen=True)
class MicroBatch:
    epoch: int
    examples: list[int]  # indices into the examples, all of one aspect bucket
    samples: list[int]  # each one's global index in the seeded data order; it seeds the sample's draws


def epoch_batches(examples: Sequence[Example], batch_size: int, seed: int, epoch: int) -> list[list[tuple[int, int]]]:
    """The micro-batches of one epoch, each from one bucket: (example index, sample index) pairs.

    Every example appears ``repeats`` times. The samples are first put in a seeded order, bucket
    after bucket, and numbered; only then cut into batches and the batches shuffled. The numbering
    depends on (seed, epoch) alone, not on the batch size, so a sample gets the same noise, sigma and
    caption dropout at any batch size or accumulation.
    """
    rng = random.Random(f"{seed}:{epoch}")
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for index, example in enumerate(examples):
        by_bucket.setdefault(example.bucket, []).extend([index] * example.repeats)
    first = epoch * sum(len(indices) for indices in by_bucket.values())
    batches: list[list[tuple[int, int]]] = []
    for bucket in sorted(by_bucket):
        indices = by_bucket[bucket]
        rng.shuffle(indices)
        numbered = list(zip(indices, range(first, first + len(indices)), strict=True))
        first += len(indices)
        batches.extend(numbered[i : i + batch_size] for i in range(0, len(numbered), batch_size))
    rng.shuffle(batches)
    return batches


def batches_per_epoch(examples: Sequence[Example], batch_size: int) -> int:
    counts: dict[tuple[int, int], int] = {}
    for example in examples:
        counts[example.bucket] = counts.get(example.bucket, 0) + example.repeats
    return sum(-(-n // batch_size) for n in counts.values())


class DataOrder:
    """Maps the run's micro-batch counter to the micro-batch it trains on."""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int):
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = batches_per_epoch(examples, batch_size)
        self._epoch: int | None = None
        self._batches: list[list[tuple[int, int]]] = []

    def micro_batch(self, index: int) -> MicroBatch:
        epoch, position = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, epoch_batches(self.examples, self.batch_size, self.seed, epoch)
        pairs = self._batches[position]
        return MicroBatch(epoch, [example for example, _ in pairs], [sample for _, sample in pairs])


def total_steps(config: TrainingConfig, examples: Sequence[Example], batch_size: int | None = None) -> tuple[int, int]:
    """(optimizer steps to train, optimizer steps per epoch); ``batch_size``: the micro-batch of all
    processes together, when several train (default: train_batch_size)."""
    from chroma_studio.config import DEFAULT_MAX_TRAIN_STEPS

    optim = config.optim
    batch = batch_size or optim.train_batch_size
    per_epoch = max(1, batches_per_epoch(examples, batch) // optim.gradient_accumulation_steps)
    if optim.max_train_steps:
        return optim.max_train_steps, per_epoch
    if optim.num_train_epochs:
        return optim.num_train_epochs * per_epoch, per_epoch
    return DEFAULT_MAX_TRAIN_STEPS, per_epoch
