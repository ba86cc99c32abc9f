"""The vcoco_eval fixture: official agent / role AP, the detections pickle, QPIC's python metric."""

import gzip
import json
import math
import pickle

import pytest

from hqm.data.annotations import read_correct_mat, read_vcoco_annotations
from hqm.evaluation import vcoco
from hqm.evaluation.predictions import read_predictions


@pytest.fixture(scope="module")
def data(vcoco_dir):
    corre = read_correct_mat(vcoco_dir / "annotations" / "corre_vcoco.npy", 29)
    preds = read_predictions(vcoco_dir / "predictions_qpic.json", 29)
    expected = json.loads((vcoco_dir / "expected.json").read_text())
    return corre, preds, expected


def _check_official(result, exp):
    assert result["agent_ap"] == pytest.approx(exp["average_agent_ap"], abs=1e-4)
    assert result["role_ap_s1_24"] == pytest.approx(exp["average_role_ap_scenario_1_without_point"], abs=1e-4)
    assert result["role_ap_s2_24"] == pytest.approx(exp["average_role_ap_scenario_2_without_point"], abs=1e-4)
    assert result["role_ap_s1_25"] == pytest.approx(exp["average_role_ap_scenario_1_all_25"], abs=1e-4)
    assert result["role_ap_s2_25"] == pytest.approx(exp["average_role_ap_scenario_2_all_25"], abs=1e-4)
    for action, ap in exp["agent_ap"].items():
        assert result["agent_ap_per_action"][action] == pytest.approx(ap, abs=1e-6), action
    for s in (1, 2):
        for pair, ap in exp[f"role_ap_scenario_{s}"].items():
            assert result[f"role_ap_per_pair_s{s}"][pair] == pytest.approx(ap, abs=1e-6), (s, pair)
    assert result["num_detections"] == exp["num_detections"]


def test_official_evaluation_from_predictions(vcoco_dir, data):
    corre, preds, expected = data
    _check_official(vcoco.evaluate_vcoco_official(vcoco_dir, preds, corre), expected["official"])


def test_official_evaluation_of_the_shipped_pickle(vcoco_dir, data):
    _, _, expected = data
    dets = pickle.loads(gzip.decompress((vcoco_dir / "detections_official.pkl.gz").read_bytes()))
    gt = vcoco.load_vcoco_official(vcoco_dir)
    _check_official(vcoco.evaluate_vcoco_detections(gt, vcoco.detections_from_dicts(dets)), expected["official"])


def _same(a, b):
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and a != a else a == b


def test_pickle_export_matches_qpic(vcoco_dir, data, tmp_path):
    corre, preds, _ = data
    out = tmp_path / "dets.pkl"
    vcoco.write_official_pickle(out, preds, corre)
    mine = vcoco.read_official_pickle(out)
    ref = pickle.loads(gzip.decompress((vcoco_dir / "detections_official.pkl.gz").read_bytes()))
    assert len(mine) == len(ref)
    for a, b in zip(mine, ref):
        assert list(a) == list(b) and len(a) == 53
        assert all(_same(a[k], b[k]) for k in a), a["image_id"]


def test_qpic_python_metric(vcoco_dir, data):
    corre, preds, expected = data
    exp = expected["qpic_python"]
    result = vcoco.evaluate_vcoco_qpic(read_vcoco_annotations(vcoco_dir / "annotations" / "test_vcoco.json"),
                                       preds, corre)
    assert result["mAP_all"] == pytest.approx(exp["mAP_all"], abs=1e-12)
    assert result["mAP_thesis"] == pytest.approx(exp["mAP_thesis"], abs=1e-12)
    assert result["num_gt_per_verb"] == exp["num_gt_per_verb"]
    for name, ap in exp["ap_per_verb"].items():
        assert result["ap_per_verb"][name] == pytest.approx(ap, abs=1e-12), name
