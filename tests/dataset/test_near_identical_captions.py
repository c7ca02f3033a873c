"""The near-identical caption check against the definition it replaces: every pair compared.

The join in ``similar_sets`` must find exactly the pairs that comparing every pair finds, so the
corpora here are built around the threshold: pairs at exactly 0.8, just under and just over it, for
many caption lengths, among templated captions whose pairs sit at 0.87 and 0.75.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chroma_studio.dataset import similar_sets
from chroma_studio.dataset.caption_checks import NEAR_IDENTICAL, check_captions, near_identical_groups, words
from chroma_studio.dataset.grouping import group_pairs
from chroma_studio.dataset.scan import ImageRecord
from chroma_studio.dataset.similar_sets import similar_pairs

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "grey", "navy", "olive", "beige"]
GARMENTS = ["jacket", "coat", "shirt", "sweater", "hoodie", "dress", "suit", "blazer", "vest", "parka"]
PLACES = ["park", "street", "kitchen", "forest", "office", "subway station", "living room", "city square"]
LIGHTING = ["golden hour light", "soft window light", "harsh midday sun", "neon glow", "candlelight", "blue hour"]
TEMPLATES = (
    "a photo of sks man wearing a {colour} {garment} in the {place}, {lighting}",
    "close-up portrait of sks man in a {colour} {garment}, {place} behind him, {lighting}",
)
# (shared words, words in either): 0.8 exactly, then just under and just over it
AT_THRESHOLD = [(4, 5), (8, 10), (12, 15), (16, 20), (20, 25), (24, 30), (32, 40)]
JUST_UNDER = [(3, 4), (7, 9), (11, 14), (15, 19), (19, 24), (23, 29), (31, 39)]
JUST_OVER = [(5, 6), (9, 11), (13, 16), (17, 21), (21, 26), (25, 31), (33, 41)]


def every_pair(word_sets: list[frozenset[str]], threshold: float = NEAR_IDENTICAL) -> list[tuple[int, int]]:
    """The oracle: today's measure applied to every pair of non-empty word sets."""
    pairs = []
    for i, a in enumerate(word_sets):
        for j in range(i + 1, len(word_sets)):
            b = word_sets[j]
            overlap = len(a & b)
            if a and b and overlap >= threshold * (len(a) + len(b) - overlap) - 1e-9:
                pairs.append((i, j))
    return pairs


def templated(rng: random.Random, count: int) -> list[str]:
    return [
        rng.choice(TEMPLATES).format(
            colour=rng.choice(COLOURS),
            garment=rng.choice(GARMENTS),
            place=rng.choice(PLACES),
            lighting=rng.choice(LIGHTING),
        )
        for _ in range(count)
    ]


def pair_with_overlap(rng: random.Random, shared: int, either: int) -> tuple[str, str]:
    """Two captions of fresh words sharing ``shared`` words out of ``either``, the extra split at random."""
    fresh = [f"w{rng.randrange(10**9)}" for _ in range(either)]
    common, extra = fresh[:shared], fresh[shared:]
    cut = rng.randint(0, len(extra))
    a, b = common + extra[:cut], common + extra[cut:]
    rng.shuffle(a)
    rng.shuffle(b)
    return " ".join(a), " ".join(b)


def threshold_pairs(rng: random.Random, each: int) -> list[str]:
    captions = []
    for shared, either in AT_THRESHOLD + JUST_UNDER + JUST_OVER:
        for _ in range(each):
            captions += pair_with_overlap(rng, shared, either)
    return captions


def random_captions(rng: random.Random, count: int) -> list[str]:
    vocabulary = [f"v{k}" for k in range(40)] + list(COLOURS + GARMENTS)
    return [" ".join(rng.sample(vocabulary, rng.randint(1, 12))) for _ in range(count)]


def corpus(seed: int, size: int) -> list[frozenset[str]]:
    rng = random.Random(seed)
    captions = templated(rng, size // 2) + threshold_pairs(rng, size // 200) + random_captions(rng, size // 4)
    rng.shuffle(captions)
    return [frozenset(words(caption)) for caption in captions]


def test_the_join_finds_every_pair_that_comparing_all_pairs_finds_and_nothing_else():
    word_sets = corpus(seed=7, size=2000)
    exact = set(every_pair(word_sets))
    at_threshold = [
        (i, j) for i, j in exact if 5 * len(word_sets[i] & word_sets[j]) == 4 * len(word_sets[i] | word_sets[j])
    ]

    found = set(similar_pairs(word_sets, NEAR_IDENTICAL))

    assert len(word_sets) >= 1900 and len(exact) > 1000 and len(at_threshold) >= len(AT_THRESHOLD) * 10
    assert found <= exact, "a pair below the threshold was reported"
    assert len(found) >= 0.99 * len(exact)
    assert found == exact, f"missed {sorted(exact - found)[:5]}"  # the join is exact, so nothing may be missed
    assert near_identical_groups(word_sets) == group_pairs(len(word_sets), exact)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.75, 0.8, 0.9, 1.0])
def test_every_threshold_and_block_size_gives_the_pairs_of_the_oracle(monkeypatch, threshold):
    word_sets = corpus(seed=int(threshold * 100), size=500)
    exact = every_pair(word_sets, threshold)
    # Tiny blocks, so that sets and their candidates are split across many of them.
    monkeypatch.setattr(similar_sets, "_BLOCK_HITS", 300)
    monkeypatch.setattr(similar_sets, "_VERIFY_WORDS", 100)

    assert similar_pairs(word_sets, threshold) == exact
    assert near_identical_groups(word_sets, threshold) == group_pairs(len(word_sets), exact)


@pytest.mark.parametrize(
    ("threshold", "shared", "either"),
    # Jaccard exactly at the threshold, with sizes where float arithmetic rounds a bound up
    # (0.9 * 19 / 1.9 is 9.000000000000002): the filters must not lose these pairs.
    [(0.9, 9, 10), (0.9, 18, 20), (0.9, 27, 30), (0.8, 28, 35), (0.8, 12, 15), (0.5, 1, 2), (1.0, 6, 6)],
)
def test_pairs_exactly_at_the_threshold_survive_rounding(threshold, shared, either):
    rng = random.Random(shared)
    word_sets = []
    for cut in range(either - shared + 1):  # the extra words split every way, a subset included
        fresh = [f"w{rng.randrange(10**9)}" for _ in range(either)]
        extra = fresh[shared:]
        word_sets += [frozenset(fresh[:shared] + extra[:cut]), frozenset(fresh[:shared] + extra[cut:])]

    expected = [(k, k + 1) for k in range(0, len(word_sets), 2)]
    assert every_pair(word_sets, threshold) == expected
    assert similar_pairs(word_sets, threshold) == expected


@pytest.mark.parametrize(
    ("captions", "groups"),
    [
        (["", "", "a b c", "   "], []),  # empty captions never group, not even with each other
        (["...", "!?", "🙂🙂", "a b"], []),  # no words at all count as empty
        (["a cat on a mat", "a cat on a mat", "a dog"], [[0, 1]]),
        (["sks man in a red coat"] * 4 + ["sks man"], [[0, 1, 2, 3]]),
        (["cat", "cat", "dog", "cat dog", "dog"], [[0, 1], [2, 4]]),  # one word: only copies match
        (["red car", "car red", "red", "red car, red car!"], [[0, 1, 3]]),  # 1 of 2 words is not enough
        (["A photo of OHWX, smiling.", "a photo of ohwx smiling", "a-photo (of) ohwx: SMILING!"], [[0, 1, 2]]),
        (["Café au lait, crème BRÛLÉE", "café au lait crème brûlée", "cafe au lait creme brulee"], [[0, 1]]),
        (["東京 の 夜景 と 雨", "東京 の 夜景 と 雨 🙂", "Straße am Morgen", "STRASSE am morgen"], [[0, 1]]),
        (["a b c d e", "a b c d e f", "x y z"], [[0, 1]]),  # 5/6
        (["a b c d", "a b c d e"], [[0, 1]]),  # 4/5: exactly at the threshold
        (["a b c", "a b c d"], []),  # 3/4 is under it
    ],
)
def test_edge_cases_match_the_oracle(captions, groups):
    word_sets = [frozenset(words(caption)) for caption in captions]

    assert near_identical_groups(word_sets) == groups
    assert groups == group_pairs(len(word_sets), every_pair(word_sets))


def test_groups_are_transitive_and_independent_of_order():
    chain = ["a b c d e f g h", "a b c d e f g h i j", "a b c d e f g h i j k l"]  # 0.8, 0.83, but 0.67 end to end
    word_sets = [*(frozenset(words(c)) for c in [*chain, "x y z"]), *corpus(seed=3, size=300)]
    groups = near_identical_groups(word_sets)
    order = list(range(len(word_sets)))
    random.Random(1).shuffle(order)

    shuffled = near_identical_groups([word_sets[i] for i in order])

    assert [0, 1, 2] in groups
    assert sorted(sorted(order[i] for i in group) for group in shuffled) == sorted(groups)
    assert near_identical_groups(word_sets) == groups


def test_a_threshold_of_zero_is_refused():
    with pytest.raises(ValueError, match="above 0"):
        near_identical_groups([frozenset("ab"), frozenset("cd")], threshold=0.0)


def test_findings_name_each_group_once_with_the_others_related(tmp_path: Path):
    captions = {
        "a": "ohwx man wearing a red coat in the park at golden hour",
        "b": "ohwx man wearing a blue coat in the park at golden hour",  # 10 of 12 words: 0.83
        "c": "ohwx man wearing a red coat in the park at golden hour",  # a copy of a
        "d": "a watercolour of a lighthouse on a cliff in a storm",
        "e": "...",  # no words: never near anything
        "f": "Ohwx man, wearing a blue coat in the park at golden hour!",  # b with case and punctuation
    }
    records = []
    for name, text in captions.items():
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
        records.append(ImageRecord(tmp_path / f"{name}.png", 512, 512, tmp_path / f"{name}.txt", tmp_path))

    findings, stats = check_captions(records)

    [near] = [f for f in findings if f.code == "captions-near-identical"]
    assert near.path == tmp_path / "a.txt" and near.severity == "warning"
    assert near.related == tuple(tmp_path / f"{name}.txt" for name in "bcf")
    assert near.message.startswith("is nearly identical to the captions of b.png, c.png, f.png; say what differs")
    assert stats.near_identical == 4
