"""Vectorised building blocks of the matchers: key joins, first-best selection, first occurrence."""

from __future__ import annotations

import numpy as np


def join_on_key(left_keys: np.ndarray, right_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (left, right) index pairs with equal keys, grouped by left, right in input order.

    left_keys [L], right_keys [R] int64 -> (left_index [P], right_index [P]).
    """
    right_order = np.argsort(right_keys, kind="stable")
    sorted_keys = right_keys[right_order]
    lo = np.searchsorted(sorted_keys, left_keys, side="left")
    counts = np.searchsorted(sorted_keys, left_keys, side="right") - lo
    left = np.repeat(np.arange(len(left_keys)), counts)
    within = np.arange(len(left)) - np.repeat(np.cumsum(counts) - counts, counts)
    return left, right_order[np.repeat(lo, counts) + within]


def first_best(pair_left: np.ndarray, pair_right: np.ndarray, value: np.ndarray, eligible: np.ndarray,
               num_left: int) -> np.ndarray:
    """Per left item, the right item of its first eligible pair with the largest value (-1 if none).

    Pairs must be grouped by left in the order that breaks ties (first wins).
    """
    score = np.where(eligible, value, -np.inf).astype(np.float64)
    best = np.full(num_left, -np.inf)
    np.maximum.at(best, pair_left, score)
    is_best = eligible & (score == best[pair_left])
    lefts, pos = np.unique(pair_left[is_best], return_index=True)
    out = np.full(num_left, -1, dtype=np.int64)
    out[lefts] = pair_right[is_best][pos]
    return out


def first_occurrence(ids: np.ndarray) -> np.ndarray:
    """Bool [N]: True where ids[i] >= 0 appears for the first time (the no-fallback TP rule)."""
    out = np.zeros(len(ids), dtype=bool)
    has = np.nonzero(ids >= 0)[0]
    _, first = np.unique(ids[has], return_index=True)
    out[has[first]] = True
    return out
