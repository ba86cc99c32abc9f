"""Average precision over many categories at once (numpy only, no Python loop over detections).

Detections of all categories are passed as flat arrays with a category index; one sort groups them
by category and orders each group by descending score, cumulative sums give precision / recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hqm.evaluation.matching import group_then_descending

# float64 thresholds of numpy.arange(0., 1.1, 0.1) (QPIC) and of MATLAB's colon 0:0.1:1 (official:
# first half k*0.1, second half 1 - (10-k)*0.1); they differ at 0.6 and 0.7.
NUMPY_ARANGE_THRESHOLDS = np.arange(0.0, 1.1, 0.1)
MATLAB_COLON_THRESHOLDS = np.array([k * 0.1 for k in range(6)] + [1.0 - (10 - k) * 0.1 for k in range(6, 11)])
THRESHOLDS = {"numpy_arange": NUMPY_ARANGE_THRESHOLDS, "matlab_colon": MATLAB_COLON_THRESHOLDS}


@dataclass
class RankedDetections:
    """Detections grouped by category, each group in descending score order.

    order: int64 [M] positions into the caller's arrays; category: int64 [M] (sorted);
    recall, precision: float64 [M] cumulative within the category; starts, ends: int64 [K] group
    bounds per category (empty group: start == end).
    """

    order: np.ndarray
    category: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


def rank_detections(category: np.ndarray, score: np.ndarray, is_tp: np.ndarray, npos: np.ndarray,
                    stable: bool = True, order: np.ndarray | None = None) -> RankedDetections:
    """Sort detections by (category, -score) and compute cumulative recall / precision.

    category [M] int in 0..K-1, score [M], is_tp [M] bool, npos [K] (0 gives recall inf/nan; such
    categories are the caller's business). ``stable=True`` keeps input order among equal scores;
    ``order`` is that stable order if the caller has it already.
    """
    category = np.asarray(category, dtype=np.int64)
    num_categories = len(npos)
    if order is not None:
        pass
    elif stable:
        order = group_then_descending(category, score)
    else:  # numpy's default sort, as ``argsort(-score)`` in the reference (tie order unspecified)
        by_score = np.argsort(-np.asarray(score, dtype=np.float64))
        order = by_score[np.argsort(category[by_score], kind="stable")]
    cat = category[order]
    starts = np.searchsorted(cat, np.arange(num_categories), side="left")
    ends = np.searchsorted(cat, np.arange(num_categories), side="right")
    # per-group cumulative counts: running total minus the total before the group's start
    cum_tp = np.cumsum(np.asarray(is_tp, dtype=bool)[order], dtype=np.int64)
    before = np.concatenate([[0], cum_tp])[starts]  # [K]
    cum_tp -= before[cat]
    rank = np.arange(1, len(cat) + 1, dtype=np.int64)
    rank -= starts[cat]  # = cumulative TP + FP within the group
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = cum_tp / np.asarray(npos, dtype=np.float64)[cat]
    precision = cum_tp / rank  # = cum_tp / (cum_fp + cum_tp), the same integers
    return RankedDetections(order, cat, recall, precision, starts, ends)


def eleven_point_ap(ranked: RankedDetections, thresholds: np.ndarray = NUMPY_ARANGE_THRESHOLDS) -> np.ndarray:
    """11-point interpolated AP per category, float64 [K]; a category without detections gets 0.

    AP = sum_t max{precision_i : recall_i >= t} / 11, summed term by term as the references do.
    Recall is non-decreasing inside a group, so {recall >= t} is a suffix of the group and the
    maximum over it is one ``np.maximum.reduceat`` over (suffix start, group end) pairs.
    """
    starts, ends = ranked.starts, ranked.ends
    num_categories = len(starts)
    num_t = len(thresholds)
    if len(ranked.recall) == 0:
        return np.zeros(num_categories)
    # number of detections with recall < t in each group -> first index reaching t
    first = np.empty((num_categories, num_t), np.int64)  # [K, T]
    for t, threshold in enumerate(thresholds):
        cum_below = np.concatenate([[0], np.cumsum(ranked.recall < threshold)])
        first[:, t] = starts + cum_below[ends] - cum_below[starts]
    has = first < ends[:, None]
    padded = np.concatenate([ranked.precision, [0.0]])
    pairs = np.stack([first.ravel(), np.repeat(ends, num_t)], axis=1).ravel()
    suffix_max = np.maximum.reduceat(padded, pairs)[0::2].reshape(num_categories, num_t)
    terms = np.where(has, suffix_max, 0.0) / 11.0
    ap = np.zeros(num_categories)
    for t in range(num_t):  # sequential sum, matching the reference's float rounding
        ap = ap + terms[:, t]
    return ap


def all_point_ap(ranked: RankedDetections) -> np.ndarray:
    """VOC all-point AP per category, float64 [K] (:func:`voc_all_point_ap` on each group); a
    category without detections gets 0. Not a published HICO-DET protocol: a named option for the
    in-training curve, which the 11-point sum moves by a whole term when a category's maximum recall
    crosses a tenth (docs/demo.md, "What moves the end of a curve")."""
    return np.array([voc_all_point_ap(ranked.recall[s:e], ranked.precision[s:e]) if e > s else 0.0
                     for s, e in zip(ranked.starts, ranked.ends)])


def max_recall(ranked: RankedDetections) -> np.ndarray:
    """Final (maximum) recall per category, float64 [K]; 0 without detections."""
    has = ranked.ends > ranked.starts
    out = np.zeros(len(ranked.starts))
    out[has] = ranked.recall[ranked.ends[has] - 1]
    return out


def voc_all_point_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point interpolated AP of one ranked list (v-coco ``voc_ap``).

    recall, precision [M] in ranked order; (0, 0) is prepended and (1, 0) appended, precision made
    monotone from the right, and the area summed where recall changes.
    """
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
