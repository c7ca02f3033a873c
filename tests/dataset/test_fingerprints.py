from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from chroma_studio.dataset import fingerprints
from chroma_studio.dataset.caption_checks import near_identical_groups, words
from chroma_studio.dataset.fingerprints import (
    NEAR_DUPLICATE_BITS,
    dhash,
    file_sha256,
    hamming,
    near_duplicate_groups,
)
from chroma_studio.dataset.grouping import group_pairs

from .files import photo


def gray(im: Image.Image) -> Image.Image:
    return im.convert("L")


def test_file_sha256_matches_hashlib(tmp_path):
    data = os.urandom(3 * 2**20 + 17)  # more than one read chunk
    (tmp_path / "f").write_bytes(data)

    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_dhash_is_stable_under_resize_recompression_and_brightness(tmp_path):
    original = photo((640, 480), seed=1)
    original.resize((320, 240), Image.Resampling.LANCZOS).save(tmp_path / "small.jpg", quality=60)
    with Image.open(tmp_path / "small.jpg") as reloaded:
        variants = [reloaded.convert("RGB"), ImageEnhance.Brightness(original).enhance(1.15)]
    base = dhash(gray(original))

    assert len(base) == 16
    for variant in variants:
        assert hamming(base, dhash(gray(variant))) <= NEAR_DUPLICATE_BITS


def test_dhash_separates_different_pictures():
    hashes = [dhash(gray(photo((320, 240), seed=seed))) for seed in range(20)]

    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 2 * NEAR_DUPLICATE_BITS


def test_near_duplicate_groups_are_transitive_and_skip_loners():
    base = int.from_bytes(os.urandom(16), "big")
    far = [os.urandom(16) for _ in range(50)]

    def flipped(bits: int) -> bytes:
        return (base ^ ((1 << bits) - 1)).to_bytes(16, "big")

    # 0 ~ 8 bits ~ 16 bits: the ends are 16 apart but linked through the middle.
    hashes = [flipped(0), *far[:25], flipped(8), *far[25:], flipped(16), flipped(0)]

    assert near_duplicate_groups(hashes, max_bits=10) == [[0, 26, 52, 53]]
    assert near_duplicate_groups(hashes, max_bits=7) == [[0, 53]]
    assert near_duplicate_groups(hashes[:1]) == []


def test_near_duplicate_search_covers_every_pair_across_blocks():
    hashes = [os.urandom(16) for _ in range(300)]  # several comparison blocks
    hashes[299] = hashes[1]
    hashes[250] = bytes([hashes[130][0] ^ 1]) + hashes[130][1:]

    assert near_duplicate_groups(hashes) == [[1, 299], [130, 250]]


def test_popcount_without_numpy_bitwise_count(monkeypatch):
    words_ = np.frombuffer(os.urandom(8 * 64), dtype=np.uint64)
    expected = [bin(int(w)).count("1") for w in words_]
    monkeypatch.delattr(np, "bitwise_count", raising=False)

    assert fingerprints._popcount(words_).tolist() == expected


def test_group_pairs():
    assert group_pairs(6, [(4, 1), (1, 2), (5, 5)]) == [[1, 2, 4]]
    assert group_pairs(3, []) == []


@pytest.mark.parametrize(
    ("captions", "groups"),
    [
        (["a b c d e", "a b c d e f", "x y z"], [[0, 1]]),  # 5/6 similar
        (["a b c d e", "a b c d f", "a b c"], []),  # 4/6 and 3/5 are below 0.8
        (["one two", "two one", "", "one two"], [[0, 1, 3]]),  # word sets, order ignored; empty never groups
    ],
)
def test_near_identical_caption_groups(captions, groups):
    assert near_identical_groups([frozenset(words(c)) for c in captions]) == groups


def test_near_identical_groups_agree_with_brute_force():
    rng = np.random.default_rng(3)
    vocabulary = [f"w{i}" for i in range(40)]
    sets = [frozenset(rng.choice(vocabulary, size=rng.integers(3, 12), replace=False)) for _ in range(200)]
    sets += [frozenset(set(s) | {"extra"}) for s in sets[:30]]

    pairs = [
        (i, j)
        for i in range(len(sets))
        for j in range(i + 1, len(sets))
        if sets[i] and len(sets[i] & sets[j]) >= 0.8 * len(sets[i] | sets[j])
    ]

    assert near_identical_groups(sets) == group_pairs(len(sets), pairs)
