"""Which word sets are alike: an exact Jaccard similarity join that scales to tens of thousands of sets.

Comparing every pair is quadratic, and so is MinHash with LSH banding (what this replaces) on
templated captions: most of their words are shared, so nearly every pair lands in a common bucket;
10,000 such captions took 78 s and 2.8 GB. MinHash is approximate too, and datasketch would add a
dependency to that end. The join here is exact, in the prefix-filtering family of set similarity
joins (AllPairs, PPJoin), and its filters only ever rule out pairs that cannot pass:

- length: a set of n words can only be alike to sets of at least ceil(t * n) words;
- prefix: with every set's words ordered rarest first, two sets that share at least a words share
  one among the first n - a + 1 words of each. Only those prefixes are indexed and probed: rare
  words keep the lists short, and the words every caption has (the trigger, "a", "photo") sit
  at the end, outside the prefix;
- position: when the k-th word two sets share sits at position i of one (n words) and j of the
  other (m words), counting from 0, they share at most k + min(n - i - 1, m - j - 1) words, and
  that must reach the overlap that the threshold asks of two sets of their sizes.

Each pair left is verified with ``is_similar``, the one definition of "alike", so the result is
the same as comparing every pair. Sets are numbered from the smallest and each is paired with the
sets before it, a block of sets at a time so that numpy does the work in a few large steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from chroma_studio.dataset.grouping import group_pairs

TOLERANCE = 1e-9  # is_similar's allowance for float rounding
_SLACK = 1e-6  # the filters' bounds are lowered by this much, so float rounding never drops a pair
_BLOCK_HITS = 1 << 18  # index entries a block of sets may look at: bounds a block's memory
_BLOCK_MARKS = 1 << 24  # bytes of word masks (sets x vocabulary) a block may hold
_VERIFY_WORDS = 1 << 20  # words gathered at a time to count overlaps

Count = int | np.ndarray


def is_similar(overlap: Count, size_a: Count, size_b: Count, threshold: float) -> bool | np.ndarray:
    """Jaccard similarity |a & b| / |a | b| >= ``threshold``, from the overlap and the two sizes.

    Works on ints and elementwise on numpy arrays, with the same float arithmetic in both.
    """
    return overlap >= threshold * (size_a + size_b - overlap) - TOLERANCE


def similar_groups(sets: Sequence[frozenset[str]], threshold: float) -> list[list[int]]:
    """Groups of indices whose sets are alike, transitively (connected components); empty sets never group.

    Each group is sorted and groups are ordered by their first member, as ``group_pairs`` returns them.
    Identical sets are grouped directly, and only the links that join two components are kept.
    """
    copies = _copies(sets, threshold)
    pairs = [(members[0], other) for members in copies.values() for other in members[1:]]
    if len(copies) >= 2:
        firsts = [members[0] for members in copies.values()]
        join = _Join(list(copies), threshold)
        pairs += [(firsts[join.original[x]], firsts[join.original[y]]) for x, y in join.component_links()]
    return group_pairs(len(sets), pairs)


def similar_pairs(sets: Sequence[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """Every pair (i, j), i < j, of non-empty sets that are alike, sorted: for measuring and testing the join."""
    copies = list(_copies(sets, threshold).values())
    pairs = [(a, b) for members in copies for k, a in enumerate(members) for b in members[k + 1 :]]
    if len(copies) >= 2:
        join = _Join([sets[members[0]] for members in copies], threshold)
        for xs, ys in join.candidate_blocks():
            alike = join.alike(xs, ys)
            for x, y in zip(xs[alike].tolist(), ys[alike].tolist(), strict=True):
                for i in copies[join.original[x]]:
                    pairs += [(min(i, j), max(i, j)) for j in copies[join.original[y]]]
    return sorted(pairs)


def _copies(sets: Sequence[frozenset[str]], threshold: float) -> dict[frozenset[str], list[int]]:
    """Each distinct non-empty set -> the indices that hold it, in order."""
    if not threshold > 0:  # the filters rely on alike sets sharing a word
        raise ValueError(f"threshold must be above 0, not {threshold}")
    copies: dict[frozenset[str], list[int]] = {}
    for index, word_set in enumerate(sets):
        if word_set:
            copies.setdefault(word_set, []).append(index)
    return copies


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices start, start + 1, ..., start + length - 1 of every range, concatenated."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - ends + lengths, lengths) + np.arange(int(ends[-1]) if len(ends) else 0)


def _group_starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values begins in sorted ``keys``."""
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, dtype=np.int64)


class _Join:
    """Distinct non-empty sets, numbered from the smallest, as rarest-first word ranks with a prefix index."""

    def __init__(self, sets: list[frozenset[str]], threshold: float) -> None:
        self.threshold = threshold
        self.original = sorted(range(len(sets)), key=lambda i: (len(sets[i]), i))  # number -> index in sets
        frequency: dict[str, int] = {}
        for word_set in sets:
            for word in word_set:
                frequency[word] = frequency.get(word, 0) + 1
        rank = {word: r for r, word in enumerate(sorted(frequency, key=lambda w: (frequency[w], w)))}
        rows = [sorted(rank[word] for word in sets[i]) for i in self.original]
        count = self.count = len(rows)
        self.vocabulary = len(rank)
        self.sizes = np.array([len(row) for row in rows], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)))
        self.words = np.fromiter((r for row in rows for r in row), dtype=np.int64, count=int(self.starts[-1]))

        # A set x of n words shares at least ceil(t * n) words with any set alike to it, and that
        # set is no smaller, so x probes with its first n - ceil(t * n) + 1 words. Paired with a
        # larger set, x shares at least 2t / (1 + t) * n, so fewer of its words go in the index.
        min_overlap = np.maximum(1, np.ceil(threshold * self.sizes - _SLACK)).astype(np.int64)
        self.probe_starts = np.concatenate(([0], np.cumsum(np.maximum(0, self.sizes - min_overlap + 1))))
        self.probe_set, self.probe_position, probe_word = self._prefixes(min_overlap)
        indexed = np.maximum(1, np.ceil(2 * threshold / (1 + threshold) * self.sizes - _SLACK)).astype(np.int64)
        index_set, index_position, index_word = self._prefixes(indexed)
        # The index, sorted by (word, set): a probe finds the sets before x with its word in their
        # prefix, from the smallest that is large enough (the length filter).
        keys = index_word * count + index_set
        order = np.argsort(keys, kind="stable")
        self.index_keys, self.index_set, self.index_position = keys[order], index_set[order], index_position[order]
        smallest = np.searchsorted(self.sizes, min_overlap)[self.probe_set]
        self.hits_low = np.searchsorted(self.index_keys, probe_word * count + smallest)
        self.hits_high = np.searchsorted(self.index_keys, probe_word * count + self.probe_set)

    def _prefixes(self, overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(set, position, word) of the first n - overlap + 1 words of every set of n words."""
        lengths = np.maximum(0, self.sizes - overlap + 1)
        positions = _ranges(np.zeros(self.count, dtype=np.int64), lengths)
        owners = np.repeat(np.arange(self.count), lengths)
        return owners, positions, self.words[self.starts[owners] + positions]

    def candidate_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pairs (x, y), y < x, that pass the length, prefix and position filters, a block of x at a time."""
        hits = np.cumsum(np.bincount(self.probe_set, self.hits_high - self.hits_low, self.count))
        most_rows = max(1, _BLOCK_MARKS // max(1, self.vocabulary))
        first = 0
        while first < self.count:
            done = hits[first - 1] if first else 0
            last = min(int(np.searchsorted(hits, done + _BLOCK_HITS, "right")), first + most_rows, self.count)
            last = max(last, first + 1)
            yield self._candidates(first, last)
            first = last

    def _candidates(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        probes = slice(self.probe_starts[first], self.probe_starts[last])
        counts = self.hits_high[probes] - self.hits_low[probes]
        found = _ranges(self.hits_low[probes], counts)
        x, i = np.repeat(self.probe_set[probes], counts), np.repeat(self.probe_position[probes], counts)
        y, j = self.index_set[found], self.index_position[found]
        order = np.argsort(x * self.count + y, kind="stable")  # pairs together, in x's word order
        x, y, i, j = x[order], y[order], i[order], j[order]
        starts = _group_starts(x * self.count + y)
        if not len(starts):
            return x, y
        earlier = np.arange(len(x)) - np.repeat(starts, np.diff(np.r_[starts, len(x)]))  # shared words before
        x_size, y_size = self.sizes[x], self.sizes[y]
        most = earlier + 1 + np.minimum(x_size - i - 1, y_size - j - 1)
        needed = np.ceil(self.threshold * (x_size + y_size) / (1 + self.threshold) - _SLACK)
        keep = np.logical_and.reduceat(most >= needed, starts)
        return x[starts][keep], y[starts][keep]

    def alike(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Which pairs (xs[k], ys[k]) are alike, by ``is_similar`` on their exact overlaps."""
        result = np.zeros(len(xs), dtype=bool)
        ends = np.cumsum(self.sizes[ys])
        begin = 0
        while begin < len(xs):
            done = ends[begin - 1] if begin else 0
            end = max(begin + 1, int(np.searchsorted(ends, done + _VERIFY_WORDS, "right")))
            result[begin:end] = self._alike(xs[begin:end], ys[begin:end])
            begin = end
        return result

    def _alike(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        rows, row_of = np.unique(xs, return_inverse=True)
        marks = np.zeros((len(rows), self.vocabulary), dtype=bool)  # each x's words
        row_sizes = self.sizes[rows]
        marks[np.repeat(np.arange(len(rows)), row_sizes), self.words[_ranges(self.starts[rows], row_sizes)]] = True
        y_sizes = self.sizes[ys]
        shared = marks[np.repeat(row_of, y_sizes), self.words[_ranges(self.starts[ys], y_sizes)]]
        overlap = np.add.reduceat(shared, np.cumsum(y_sizes) - y_sizes, dtype=np.int64)
        return is_similar(overlap, self.sizes[xs], y_sizes, self.threshold)

    def component_links(self) -> list[tuple[int, int]]:
        """Alike pairs that connect the sets as all alike pairs do: one for each merge of two components.

        Candidates are checked one per (x, component of y) first, and the rest of a component only
        if that one was not alike: inside a cluster of alike sets that is one check per set.
        """
        label = np.arange(self.count)  # each set's component
        members: list[list[int]] = [[x] for x in range(self.count)]
        links: list[tuple[int, int]] = []

        def link(xs: np.ndarray, ys: np.ndarray) -> None:
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
                a, b = int(label[x]), int(label[y])
                if a != b:
                    big, small = (a, b) if len(members[a]) >= len(members[b]) else (b, a)
                    label[members[small]] = big
                    members[big] += members[small]
                    members[small] = []
                    links.append((x, y))

        for xs, ys in self.candidate_blocks():
            if not len(xs):
                continue
            component = xs * self.count + label[ys]  # by x, then y's component
            order = np.argsort(component, kind="stable")
            xs, ys, component = xs[order], ys[order], component[order]
            starts = _group_starts(component)
            tried = np.zeros(len(xs), dtype=bool)
            tried[starts] = True
            alike_first = self.alike(xs[starts], ys[starts])
            link(xs[starts][alike_first], ys[starts][alike_first])
            group = np.cumsum(tried) - 1
            rest = ~tried & ~alike_first[group] & (label[xs] != label[ys])
            alike_rest = np.flatnonzero(rest)[self.alike(xs[rest], ys[rest])]
            once = alike_rest[_group_starts(group[alike_rest])]
            link(xs[once], ys[once])
        return links
