"""Caption findings: missing, empty or unreadable captions, the trigger word, and diversity.

Diversity matters for Chroma more than for older models: a flow-matching model trained on
short or look-alike captions ties the concept to one pose and composition. Three signals:
- length: the median caption under ``SHORT_CAPTION_WORDS`` words;
- vocabulary: distinct words / sqrt(all words) (Guiraud's index) under ``LOW_ROOT_RATIO``; the
  plain distinct-word ratio is reported too, but it falls with dataset size by itself;
- near-identical captions: word sets with Jaccard similarity of at least ``NEAR_IDENTICAL``.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chroma_studio.dataset.caption_ops import contains_word
from chroma_studio.dataset.captions import CaptionError, read_caption_if_present
from chroma_studio.dataset.findings import CaptionStats, Finding, name_list
from chroma_studio.dataset.grouping import group_pairs
from chroma_studio.dataset.scan import ImageRecord

DIVERSITY_ADVICE = "Flow-matching models collapse to one pose without prompt diversity: write longer, varied captions."
SHORT_CAPTION_WORDS = 8
LOW_ROOT_RATIO = 3.0
NEAR_IDENTICAL = 0.8
_BANDS, _ROWS = 20, 4  # MinHash banding for NEAR_IDENTICAL (see near_identical_groups)
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
        try:
            text = read_caption_if_present(record.caption_path)
        except CaptionError as exc:
            stats.unreadable += 1
            findings.append(Finding(exc.path, "caption-unreadable", exc.reason, "error", (record.path,)))
            continue
        if text is None:
            stats.missing += 1
            findings.append(_missing(record))
        elif not text:
            stats.empty += 1
            findings.append(
                Finding(
                    record.caption_path,
                    "caption-empty",
                    "is empty, so its image trains with an empty prompt; describe the image in it.",
                    "warning",
                    (record.path,),
                )
            )
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


def _missing(record: ImageRecord) -> Finding:
    return Finding(
        record.path,
        "caption-missing",
        f"has no caption ({record.caption_path.name}), so it trains with an empty prompt; write one that "
        "describes the image.",
        "warning",
    )


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

    Identical sets are grouped directly. The others go through MinHash with banding: each set gets
    ``_BANDS`` x ``_ROWS`` min-hashes (fixed seed, so the result is repeatable), and only sets that
    agree on every hash of some band are compared exactly. A pair at the 0.8 threshold shares a
    band with probability 1 - (1 - 0.8**4)**20 > 0.9999, a pair at 0.3 only 15% of the time, so the
    work stays near linear where comparing every pair would take minutes for 10,000 captions.
    """
    same: dict[frozenset[str], list[int]] = {}
    for index, word_set in enumerate(word_sets):
        if word_set:
            same.setdefault(word_set, []).append(index)
    pairs = [(members[0], other) for members in same.values() for other in members[1:]]
    unique = list(same)
    for a, b in _candidate_pairs(unique):
        overlap = len(unique[a] & unique[b])
        if overlap >= threshold * (len(unique[a]) + len(unique[b]) - overlap) - 1e-9:
            pairs.append((same[unique[a]][0], same[unique[b]][0]))
    return group_pairs(len(word_sets), pairs)


def _candidate_pairs(sets: list[frozenset[str]]) -> set[tuple[int, int]]:
    if len(sets) < 2:
        return set()
    vocabulary = {word: i for i, word in enumerate(sorted(set().union(*sets)))}
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**32, size=(len(vocabulary), _BANDS * _ROWS), dtype=np.uint32)
    signatures = np.stack([hashes[[vocabulary[w] for w in word_set]].min(axis=0) for word_set in sets])
    candidates: set[tuple[int, int]] = set()
    for band in range(_BANDS):
        buckets: dict[bytes, list[int]] = {}
        rows = np.ascontiguousarray(signatures[:, band * _ROWS : (band + 1) * _ROWS])
        for index, row in enumerate(rows):
            buckets.setdefault(row.tobytes(), []).append(index)
        for members in buckets.values():
            candidates.update(itertools.combinations(members, 2))
    return candidates
