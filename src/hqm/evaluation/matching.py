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

    Pairs must be grouped by left (contiguous, as :func:`join_on_key` returns them) in the order
    that breaks ties (first wins). Only items with pairs cost memory beyond the int64 [num_left] result.
    """
    out = np.full(num_left, -1, dtype=np.int64)
    if len(pair_left) == 0:
        return out
    score = np.where(eligible, value, -np.inf).astype(np.float64)
    seg_start = np.flatnonzero(np.concatenate([[True], pair_left[1:] != pair_left[:-1]]))
    seg_max = np.maximum.reduceat(score, seg_start)
    seg_of_pair = np.cumsum(np.concatenate([[False], pair_left[1:] != pair_left[:-1]]))
    is_best = eligible & (score == seg_max[seg_of_pair])
    lefts, pos = np.unique(pair_left[is_best], return_index=True)
    out[lefts] = pair_right[is_best][pos]
    return out


def first_occurrence(ids: np.ndarray) -> np.ndarray:
    """Bool [N]: True where ids[i] >= 0 appears for the first time (the no-fallback TP rule)."""
    out = np.zeros(len(ids), dtype=bool)
    has = np.flatnonzero(ids >= 0)
    if len(has) == 0:
        return out
    first = np.full(int(ids[has].max()) + 1, len(ids), dtype=np.int64)
    np.minimum.at(first, ids[has], has)  # O(N), no sort
    out[first[first < len(ids)]] = True
    return out


def group_then_descending(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Stable order by ascending group, then descending score (ties keep input order).

    group [N] int >= 0 (< 2**31), score [N]. float32 scores are packed with the group into one
    uint64 key (one sort instead of lexsort's two passes); other dtypes use ``np.lexsort``.
    """
    score = np.asarray(score)
    if score.dtype != np.float32:
        return np.lexsort((-score.astype(np.float64), group))
    bits = (score + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into 0.0 (equal values, equal keys)
    ascending = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))  # IEEE order as unsigned
    key = (np.asarray(group).astype(np.uint64) << np.uint64(32)) | (~ascending).astype(np.uint64)
    return np.argsort(key, kind="stable")


def descending_order(score: np.ndarray) -> np.ndarray:
    """Stable descending order of ``score`` [N] (ties keep input order); NaN-free input.

    float32: the (descending score bits, index) pairs are packed into unique uint64 keys, so a
    plain (vectorised, unstable) ``np.sort`` gives the stable order.
    """
    score = np.asarray(score)
    if score.dtype != np.float32 or len(score) >= 2**32:
        return np.argsort(-score.astype(np.float64), kind="stable")
    bits = (score + np.float32(0)).view(np.uint32)
    ascending = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))
    key = ((~ascending).astype(np.uint64) << np.uint64(32)) | np.arange(len(score), dtype=np.uint64)
    return (np.sort(key) & np.uint64(0xFFFFFFFF)).astype(np.int64)
