"""Turning "these two are alike" pairs into groups (union-find), for duplicate images and captions."""

from __future__ import annotations

from collections.abc import Iterable


def group_pairs(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected groups of two or more among ``range(count)``, each sorted, ordered by first member."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    return [members for members in groups.values() if len(members) > 1]
