"""Hand-computed V-COCO official cases: Scenario 1 vs 2 on an unannotated role, ignored persons."""

import numpy as np
import pytest

from hqm.data.classes import VCOCO_ACTIONS
from hqm.evaluation.vcoco import VcocoDetections, VcocoOfficialGT, evaluate_vcoco_detections

HOLD = VCOCO_ACTIONS.index("hold")
P0, P1, P2 = [0, 0, 99, 99], [300, 0, 399, 99], [600, 0, 699, 99]
OBJ = [100, 0, 199, 99]
NAN4 = [np.nan] * 4


def ground_truth():
    actions = np.zeros((3, 26), np.int64)
    actions[:2, HOLD] = 1
    actions[2] = -1  # a COCO person without V-COCO labels: ignored
    roles = np.full((3, 26, 2, 4), -1, np.float32)
    roles[0, HOLD, 0] = OBJ  # P1's hold role is not annotated
    return VcocoOfficialGT(np.array([7]), np.float32([P0, P1, P2]), np.zeros(3, np.int64), actions, roles)


def detections(rows):
    """rows: (person box, role box, score) for the hold / hold-obj columns; others NaN."""
    n = len(rows)
    agent = np.full((n, 26), np.nan, np.float32)
    role = np.full((n, 25), np.nan, np.float32)
    agent[:, HOLD] = role[:, 0] = [r[2] for r in rows]
    boxes = np.zeros((n, 25, 4), np.float32)
    boxes[:, 0] = [r[1] for r in rows]
    return VcocoDetections(np.full(n, 7), np.float32([r[0] for r in rows]), agent, boxes, role)


def test_scenarios_differ_on_unannotated_roles():
    dets = detections([
        (P0, OBJ, 0.9),  # TP in both scenarios
        (P1, OBJ, 0.8),  # role not annotated but a box predicted: FP in S1, TP in S2
        (P1, NAN4, 0.7),  # "no object": TP in S1 (P1 not yet covered there), FP in S2 (covered)
        (P2, OBJ, 0.95),  # best person is ignored: not recorded at all
    ])  # fmt: skip
    result = evaluate_vcoco_detections(ground_truth(), dets)
    assert result["role_ap_per_pair_s1"]["hold-obj"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-6)
    assert result["role_ap_per_pair_s2"]["hold-obj"] == pytest.approx(1.0, abs=1e-6)
    assert result["agent_ap_per_action"]["hold"] == pytest.approx(1.0, abs=1e-6)
    assert result["agent_ap_per_action"]["stand"] is None  # no positive person: NaN in the reference
    assert result["role_ap_s1_25"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3), abs=1e-4)  # NaN pairs skipped
    assert result["agent_ap"] == pytest.approx(100 / 26, abs=1e-4)  # nansum / 26


def test_role_box_must_overlap_and_detections_of_other_images_are_dropped():
    dets = detections([(P0, [150, 0, 249, 99], 0.9), (P0, OBJ, 0.8)])  # wrong role box, then right one
    result = evaluate_vcoco_detections(ground_truth(), dets)
    # FP then TP (P0 not covered by the failed role): rec 0, .5; prec 0, .5 -> AP .25
    assert result["role_ap_per_pair_s2"]["hold-obj"] == pytest.approx(0.25, abs=1e-6)
    dets.image_id[:] = 8
    assert evaluate_vcoco_detections(ground_truth(), dets)["num_detections"] == 0
