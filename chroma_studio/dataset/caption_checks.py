"""Caption findings: missing, empty or unreadable captions, the trigger word, and diversity.

Diversity matters for Chroma more than for older models: a flow-matching model trained on
short or look-alike captions ties the concept to one pose and composition. Three signals:
- length: the median caption under ``SHORT_CAPTION_WORDS`` words;
- vocabulary: distinct words / sqrt(all words) (Guiraud's index) under ``LOW_ROOT_RATIO``; the
  plain distinct-word ratio is reported too, but it falls with dataset size by itself;
- near-identical captions: word sets with Jaccard similarity of at least ``NEAR_IDENTICAL``.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path

from chroma_studio.dataset.caption_ops import contains_word
from chroma_studio.dataset.captions import CaptionError, read_caption_if_present
from chroma_studio.dataset.findings import CaptionStats, Finding, name_list
from chroma_studio.dataset.rules import Caption, caption_finding
from chroma_studio.dataset.scan import ImageRecord
from chroma_studio.dataset.similar_sets import similar_groups

DIVERSITY_ADVICE = "Flow-matching models collapse to one pose without prompt diversity: write longer, varied captions."
SHORT_CAPTION_WORDS = 8
LOW_ROOT_RATIO = 3.0
NEAR_IDENTICAL = 0.8
LENGTH_BINS = ((0, 4), (5, 9), (10, 19), (20, 39), (40, 79), (80, None))
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def check_captions(
    records: Sequence[ImageRecord], trigger_word: str | None = None
) -> tuple[list[Finding], CaptionStats]:
    findings: list[Finding] = []
    stats = CaptionStats()
    texts: dict[int, str] = {}  # record index -> non-empty caption
    for index, record in enumerate(records):
        text: Caption
        try:
            text = read_caption_if_present(record.caption_path)
        except CaptionError as exc:
            text = exc
        found = caption_finding(record, text)
        if found is not None:
            findings.append(found)
        if isinstance(text, CaptionError):
            stats.unreadable += 1
        elif text is None:
            stats.missing += 1
        elif not text:
            stats.empty += 1
        else:
            texts[index] = text
    findings += _shared_captions(records)
    if trigger_word:
        findings += [f for i, text in texts.items() if (f := _trigger_finding(records[i], text, trigger_word))]
    token_lists = {i: words(text) for i, text in texts.items()}
    _fill_stats(stats, list(token_lists.values()))
    if len(texts) >= 2:
        groups = near_identical_groups([frozenset(tokens) for tokens in token_lists.values()])
        indices = list(token_lists)
        stats.near_identical = sum(len(g) for g in groups)
        findings += [_near_identical([records[indices[i]] for i in group]) for group in groups]
        findings += _diversity_findings(stats)
    return findings, stats


def _shared_captions(records: Sequence[ImageRecord]) -> list[Finding]:
    by_caption: dict[Path, list[Path]] = {}
    for record in records:
        by_caption.setdefault(record.caption_path, []).append(record.path)
    return [
        Finding(
            caption,
            "caption-shared",
            f"is the caption of {len(images)} images ({name_list(images)}) because they share a name; rename all but "
            "one image and give each its own caption.",
            "warning",
            tuple(images),
        )
        for caption, images in by_caption.items()
        if len(images) > 1
    ]


def _trigger_finding(record: ImageRecord, text: str, trigger: str) -> Finding | None:
    if contains_word(text, trigger):
        return None
    if contains_word(text, trigger, ignore_case=True):
        return Finding(
            record.caption_path,
            "trigger-case",
            f"has the trigger word in a different case than '{trigger}'; T5 reads case, so write it exactly.",
            "warning",
            (record.path,),
        )
    return Finding(
        record.caption_path,
        "trigger-missing",
        f"does not contain the trigger word '{trigger}'; add it (Add trigger word does it for many captions).",
        "warning",
        (record.path,),
    )


def _fill_stats(stats: CaptionStats, token_lists: list[list[str]]) -> None:
    stats.captions = len(token_lists)
    if not token_lists:
        return
    lengths = [len(tokens) for tokens in token_lists]
    stats.words_min, stats.words_max = min(lengths), max(lengths)
    stats.words_median = float(statistics.median(lengths))
    stats.words_mean = statistics.fmean(lengths)
    for low, high in LENGTH_BINS:
        label = f"{low}+" if high is None else f"{low}-{high}"
        stats.length_histogram[label] = sum(1 for n in lengths if n >= low and (high is None or n <= high))
    stats.total_tokens = sum(lengths)
    stats.distinct_tokens = len({token for tokens in token_lists for token in tokens})


def _diversity_findings(stats: CaptionStats) -> list[Finding]:
    findings = []
    if stats.words_median < SHORT_CAPTION_WORDS:
        findings.append(
            Finding(
                None,
                "captions-short",
                f"Captions are short: {stats.words_median:g} words in the middle one "
                f"(shortest {stats.words_min}, longest {stats.words_max}). {DIVERSITY_ADVICE}",
                "warning",
            )
        )
    if stats.root_ratio < LOW_ROOT_RATIO:
        findings.append(
            Finding(
                None,
                "captions-low-diversity",
                f"Captions repeat the same words: {stats.distinct_tokens} "
                f"distinct words in {stats.total_tokens} (distinct-word ratio {stats.distinct_ratio:.2f}). "
                f"Describe pose, expression, clothing, setting and light in each. {DIVERSITY_ADVICE}",
                "warning",
            )
        )
    return findings


def _near_identical(group: list[ImageRecord]) -> Finding:
    first, others = group[0], group[1:]
    return Finding(
        first.caption_path,
        "captions-near-identical",
        f"is nearly identical to the captions of {name_list([r.path for r in others])}; say what differs in each "
        f"image (pose, expression, clothing, background, light). {DIVERSITY_ADVICE}",
        "warning",
        tuple(r.caption_path for r in others),
    )


def near_identical_groups(word_sets: Sequence[frozenset[str]], threshold: float = NEAR_IDENTICAL) -> list[list[int]]:
    """Groups of indices whose word sets have Jaccard similarity >= ``threshold`` (transitively).

    Empty sets never group. The groups are those that comparing every pair would give, found by an
    exact similarity join (see ``similar_sets``) that does not compare every pair.
    """
    return similar_groups(word_sets, threshold)
