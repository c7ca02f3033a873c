"""What the Dataset page knows about each image, its problems, and the figures of the whole set.

Plain Python (no Qt), so the rules can be read and tested on their own. Problems come from two
places:
- the image checks (``check_dataset``): damaged files and duplicates, found once per scan;
- live rules, recomputed whenever a caption, the trigger word or the resolution changes:
  missing, empty or unreadable captions, too small or below the training resolution
  (``dataset.rules``: the rules, severities and words of the check and of training), and a
  missing trigger word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chroma_studio.dataset import (
    BELOW_RESOLUTION,
    TOO_SMALL,
    CaptionError,
    Finding,
    ImageRecord,
    ScanProblem,
    caption_path_for,
    contains_word,
    image_findings,
    size_fit,
)


@dataclass(frozen=True)
class ProblemKind:
    key: str
    label: str  # names the filter: "Images without a caption"
    badge: str  # the short text drawn on the thumbnail
    severity: str  # "error" | "warning" | "notice" (worth knowing, drawn quietly)


PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    ProblemKind("corrupt", "Damaged or unreadable images", "Damaged", "error"),
    ProblemKind(TOO_SMALL, "Too small to train", "Too small", "error"),
    ProblemKind("caption-unreadable", "Captions that are not UTF-8", "Caption unreadable", "error"),
    ProblemKind("caption-missing", "Images without a caption", "No caption", "warning"),
    ProblemKind("caption-empty", "Empty captions", "Empty caption", "warning"),
    ProblemKind("trigger-missing", "Captions without the trigger word", "No trigger word", "warning"),
    ProblemKind("duplicate", "Duplicates and near-duplicates", "Duplicate", "warning"),
    ProblemKind(BELOW_RESOLUTION, "Smaller than the training resolution", "Low resolution", "notice"),
    ProblemKind("huge", "Very large images", "Huge", "notice"),
)
DAMAGED = "corrupt"  # the kind of a file that cannot be read or decoded
KINDS_BY_KEY = {kind.key: kind for kind in PROBLEM_KINDS}
_ORDER = {kind.key: rank for rank, kind in enumerate(PROBLEM_KINDS)}

# Codes of check findings (and scan problems) that concern an image itself, by problem kind.
# Caption and size findings are not taken from the check: the live rules follow edits at once.
FINDING_KINDS = {
    "corrupt": "corrupt",
    "unreadable": "corrupt",
    "not-an-image": "corrupt",
    "zero-byte": "corrupt",
    "decompression-bomb": "corrupt",
    "broken-link": "corrupt",
    "permission-denied": "corrupt",
    "exact-duplicate": "duplicate",
    "near-duplicate": "duplicate",
    "huge": "huge",
}


@dataclass(eq=False)
class DatasetItem:
    """One image on the page. ``width`` is 0 for a file that could not be read at all."""

    path: Path
    caption_path: Path
    width: int = 0
    height: int = 0
    repeats: int = 1
    caption: str | None = None  # None: there is no caption file
    caption_error: str = ""  # why the caption cannot be read ("" when it can)
    image_problems: dict[str, str] = field(default_factory=dict)  # kind -> message, from scan and check

    @classmethod
    def from_record(cls, record: ImageRecord) -> DatasetItem:
        return cls(record.path, record.caption_path, record.width, record.height, record.repeats)

    @classmethod
    def from_problem(cls, problem: ScanProblem) -> DatasetItem:
        item = cls(problem.path, caption_path_for(problem.path))
        item.image_problems[FINDING_KINDS.get(problem.code, "corrupt")] = problem.message
        return item

    @property
    def usable(self) -> bool:
        """Whether it trains: its size could be read and the check did not find it damaged.

        Training leaves a file that cannot be decoded out (with a warning), so such a file counts
        as unusable here too: no training shape, no caption problems, no caption edits.
        """
        return self.width > 0 and self.height > 0 and DAMAGED not in self.image_problems

    @property
    def trains(self) -> bool:
        """Whether training takes it, size aside: a usable image whose caption (if any) can be read."""
        return self.usable and not self.caption_error

    def trains_at(self, resolution: int) -> bool:
        """Whether training at ``resolution`` takes it: ``trains``, and not too small (``dataset.rules``)."""
        return self.trains and size_fit(self.width, self.height, resolution).problem != TOO_SMALL

    @property
    def left_out_reason(self) -> str:
        """Why training leaves this image file out ("" when it is usable; see ``caption_error`` too)."""
        if self.usable:
            return ""
        return next(iter(self.image_problems.values()), "cannot be read")

    @property
    def has_caption(self) -> bool:
        return bool(self.caption)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def bucket(self, resolution: int) -> tuple[int, int] | None:
        return size_fit(self.width, self.height, resolution).bucket if self.usable else None


def rule_findings(item: DatasetItem, resolution: int) -> list[Finding]:
    """What the dataset rules (shared with the check and training) say of a usable ``item``."""
    caption: str | CaptionError | None = item.caption
    if item.caption_error:
        caption = CaptionError(item.caption_path, item.caption_error)
    return image_findings(item, resolution, caption)


def problem_kinds(item: DatasetItem, resolution: int, trigger_word: str = "") -> tuple[str, ...]:
    """The keys of ``item``'s problems, most serious first."""
    kinds = set(item.image_problems)
    if not item.usable:  # it cannot train, so its caption does not matter
        return tuple(sorted(kinds, key=_ORDER.__getitem__))
    kinds.update(f.code for f in rule_findings(item, resolution) if f.code in _ORDER)
    if item.caption and not item.caption_error and trigger_word and not contains_word(item.caption, trigger_word):
        kinds.add("trigger-missing")
    return tuple(sorted(kinds, key=_ORDER.__getitem__))


def problem_messages(item: DatasetItem, kinds: Iterable[str], resolution: int, trigger_word: str = "") -> list[str]:
    """One sentence per problem, for a tooltip: the words of the check and of training."""
    rules = {f.code: f.message for f in rule_findings(item, resolution)} if item.usable else {}
    messages = []
    for kind in kinds:
        if kind in item.image_problems:
            messages.append(item.image_problems[kind])
        elif kind in rules:
            messages.append(rules[kind])
        elif kind == "trigger-missing":
            messages.append(f"The caption does not contain the trigger word '{trigger_word}'.")
    return messages


def findings_by_path(findings: Iterable[Finding]) -> dict[Path, dict[str, str]]:
    """Image path -> {problem kind: message} for the findings that concern images themselves."""
    result: dict[Path, dict[str, str]] = {}
    for finding in findings:
        kind = FINDING_KINDS.get(finding.code)
        if kind is None or finding.path is None:
            continue
        for path in (finding.path, *finding.related):
            result.setdefault(Path(path), {}).setdefault(kind, finding.message)
    return result


def items_from_scan(
    images: Sequence[ImageRecord], problems: Sequence[ScanProblem], image_suffixes: Iterable[str]
) -> list[DatasetItem]:
    """An item per usable image, then one per image file the scan could not read (so it can be badged)."""
    items = [DatasetItem.from_record(record) for record in images]
    suffixes = {suffix.lower() for suffix in image_suffixes}
    items += [DatasetItem.from_problem(p) for p in problems if p.path.suffix.lower() in suffixes]
    return items


@dataclass(frozen=True)
class DatasetStats:
    images: int = 0  # rows, the unreadable files included
    per_epoch: int = 0  # counting folder repeats
    unusable: int = 0  # image files that cannot be read or decoded: training leaves them out
    caption_unreadable: int = 0  # usable images whose caption cannot be read: training leaves them out too
    too_small: int = 0  # usable images too small for the resolution (an error): training leaves them out too
    smallest: tuple[int, int] | None = None
    median: tuple[int, int] | None = None
    resolution: int = 0  # the training resolution the figures are for (0: none computed yet)
    buckets: dict[tuple[int, int], int] = field(default_factory=dict)  # most used first
    captioned: int = 0  # usable images with a non-empty, readable caption
    trigger_word: str = ""
    with_trigger: int = 0  # captions containing the trigger word
    problems: dict[str, int] = field(default_factory=dict)  # kind -> images
    with_problems: int = 0  # images with at least one problem

    @property
    def trainable(self) -> int:
        """Images training takes (not the damaged ones, those with an unreadable caption, nor the too small)."""
        return self.images - self.unusable - self.caption_unreadable - self.too_small


def compute_stats(
    items: Sequence[DatasetItem], kinds: Sequence[Sequence[str]], resolution: int, trigger_word: str = ""
) -> DatasetStats:
    """Figures for the stats panel; ``kinds[i]`` are the problem kinds of ``items[i]``."""
    usable = [item for item in items if item.usable]
    by_pixels = sorted(usable, key=lambda item: item.pixels)
    training = [item for item in usable if item.trains_at(resolution)]
    buckets = Counter(bucket for item in training if (bucket := item.bucket(resolution)))
    captioned = [item for item in usable if item.has_caption and not item.caption_error]
    with_trigger = sum(1 for item in captioned if trigger_word and contains_word(item.caption or "", trigger_word))
    problems = Counter(kind for item_kinds in kinds for kind in item_kinds)
    median = by_pixels[len(by_pixels) // 2] if by_pixels else None
    return DatasetStats(
        images=len(items),
        per_epoch=sum(item.repeats for item in training),
        unusable=len(items) - len(usable),
        caption_unreadable=sum(1 for item in usable if item.caption_error),
        too_small=sum(1 for item in usable if item.trains and not item.trains_at(resolution)),
        smallest=(by_pixels[0].width, by_pixels[0].height) if by_pixels else None,
        median=(median.width, median.height) if median else None,
        resolution=resolution,
        buckets=dict(buckets.most_common()),
        captioned=len(captioned),
        trigger_word=trigger_word,
        with_trigger=with_trigger,
        problems={key: problems[key] for key in _ORDER if problems[key]},
        with_problems=sum(1 for item_kinds in kinds if item_kinds),
    )
