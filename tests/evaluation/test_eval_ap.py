"""Hand-computed AP cases: 11-point (both threshold sets) and VOC all-point."""

import numpy as np
import pytest

from hqm.evaluation.ap import (
    MATLAB_COLON_THRESHOLDS,
    NUMPY_ARANGE_THRESHOLDS,
    all_point_ap,
    eleven_point_ap,
    max_recall,
    rank_detections,
    voc_all_point_ap,
)


def test_threshold_values_are_the_references():
    assert NUMPY_ARANGE_THRESHOLDS.tolist() == np.arange(0.0, 1.1, 0.1).tolist()
    assert NUMPY_ARANGE_THRESHOLDS[6] == 0.6000000000000001 and NUMPY_ARANGE_THRESHOLDS[7] == 0.7000000000000001
    assert MATLAB_COLON_THRESHOLDS.tolist() == [0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def test_eleven_point_two_categories_one_sort():
    # category 0: TP .9, FP .8, TP .7 with 2 GT -> rec .5 .5 1, prec 1 .5 2/3
    # category 1: FP .95, TP .6 with 4 GT -> rec 0 .25, prec 0 .5; category 2: no detections
    cat = np.array([1, 0, 0, 1, 0])
    score = np.array([0.95, 0.9, 0.8, 0.6, 0.7])
    tp = np.array([False, True, False, True, True])
    ranked = rank_detections(cat, score, tp, np.array([2, 4, 3]))
    ap = eleven_point_ap(ranked)
    assert ap[0] == pytest.approx((6 * 1.0 + 5 * (2 / 3)) / 11, abs=1e-15)
    assert ap[1] == pytest.approx(3 * 0.5 / 11, abs=1e-15)  # thresholds 0, .1, .2 reached by .25
    assert ap[2] == 0.0
    assert max_recall(ranked).tolist() == [1.0, 0.25, 0.0]


def test_recall_of_exactly_three_tenths_misses_its_threshold():
    # 3 of 10 GT found with precision 1 -> recall 0.3 < 0.30000000000000004: only t = 0, .1, .2 count
    ranked = rank_detections(np.zeros(3, int), np.array([0.9, 0.8, 0.7]), np.ones(3, bool), np.array([10]))
    assert eleven_point_ap(ranked)[0] == pytest.approx(3 / 11, abs=1e-15)
    # 6 of 10: MATLAB's 0.6 is reached, numpy's 0.6000000000000001 is not
    ranked = rank_detections(np.zeros(6, int), -np.arange(6.0), np.ones(6, bool), np.array([10]))
    assert eleven_point_ap(ranked, NUMPY_ARANGE_THRESHOLDS)[0] == pytest.approx(6 / 11, abs=1e-15)
    assert eleven_point_ap(ranked, MATLAB_COLON_THRESHOLDS)[0] == pytest.approx(7 / 11, abs=1e-15)


def test_stable_order_keeps_input_order_among_ties():
    ranked = rank_detections(np.zeros(2, int), np.array([0.5, 0.5]), np.array([False, True]), np.array([1]))
    assert ranked.order.tolist() == [0, 1] and ranked.precision.tolist() == [0.0, 0.5]


def test_voc_all_point_ap_hand_computed():
    # TP, FP, TP with 4 GT: rec .25 .25 .5, prec 1 .5 2/3 -> .25 * 1 + .25 * 2/3
    rec = np.array([0.25, 0.25, 0.5])
    prec = np.array([1.0, 0.5, 2 / 3])
    assert voc_all_point_ap(rec, prec) == pytest.approx(0.25 + 0.25 * 2 / 3, abs=1e-15)
    assert voc_all_point_ap(np.array([1.0]), np.array([1.0])) == 1.0


def test_all_point_ap_per_category_hand_computed():
    # the case above: category 0 rec .5 .5 1, prec 1 .5 2/3 -> .5 * 1 + .5 * 2/3; category 1: rec 0
    # .25, prec 0 .5 -> .25 * .5; category 2 has no detections -> 0
    cat = np.array([1, 0, 0, 1, 0])
    score = np.array([0.95, 0.9, 0.8, 0.6, 0.7])
    tp = np.array([False, True, False, True, True])
    ap = all_point_ap(rank_detections(cat, score, tp, np.array([2, 4, 3])))
    assert ap.tolist() == pytest.approx([0.5 + 0.5 * 2 / 3, 0.25 * 0.5, 0.0], abs=1e-15)


def test_one_detection_across_a_tenth_of_recall_moves_eleven_point_by_a_term():
    """Why the demo's curve steps (docs/demo.md): 100 GT, 89 TP, then 22 FP; one more TP after them
    takes recall to 0.9 and adds the whole 11-point term of t = 0.9 (precision 90/112, / 11), while
    the all-point area grows by one hundredth of recall at that precision."""
    def ranked(tp: list[bool]):
        return rank_detections(np.zeros(len(tp), np.int64), -np.arange(len(tp), dtype=float),
                               np.array(tp), np.array([100]))
    before = ranked([True] * 89 + [False] * 22)
    after = ranked([True] * 89 + [False] * 22 + [True])
    assert (max_recall(before)[0], max_recall(after)[0]) == (0.89, 0.9)
    jump_11 = eleven_point_ap(after)[0] - eleven_point_ap(before)[0]
    jump_all = all_point_ap(after)[0] - all_point_ap(before)[0]
    assert jump_11 == pytest.approx(90 / 112 / 11, abs=1e-12)
    assert jump_all == pytest.approx(0.01 * 90 / 112, abs=1e-12)
