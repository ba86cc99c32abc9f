"""evaluation.category_scope: ``all`` (published protocols) vs ``dataset`` (the categories corre_hico allows).

A tiny generated case whose numbers differ between the scopes, every one computed by hand:
category A (one GT, found: AP 1), B (two GT, one found first: 11-point AP 6/11), C (one GT, never
predicted: AP 0, and not allowed by the dataset's validity matrix).
"""

import json
import shutil

import numpy as np
import pytest

from hqm.cli import main
from hqm.data.annotations import HoiImageAnnotation
from hqm.data.classes import NUM_HICO_VERBS, NUM_OBJECT_CLASSES, hico_hoi_categories
from hqm.errors import HqmError
from hqm.evaluation.hico import HicoGroundTruth, evaluate_hico, load_hico_ground_truth
from hqm.evaluation.predictions import ImagePrediction, read_predictions

CATS = hico_hoi_categories()
A = CATS[0]
B = next(c for c in CATS if c.verb_index != A.verb_index and c.object_index != A.object_index)
C = next(c for c in CATS if c.verb_index not in (A.verb_index, B.verb_index)
         and c.object_index not in (A.object_index, B.object_index))
P1, P2 = [0, 0, 99, 99], [300, 0, 399, 99]
O1, O2, O3 = [100, 0, 199, 99], [400, 0, 499, 99], [200, 0, 299, 99]
AP_B = 6 / 11  # recall 0.5 with precision 1: thresholds 0, .1, ..., .5


def _image(name, boxes, labels, hois):
    return HoiImageAnnotation(name, np.asarray(boxes, np.float64), np.asarray(labels, np.int64),
                              np.asarray(hois, np.int64).reshape(-1, 3))


def _case():
    test = [
        _image("a.jpg", [P1, O1, O3], [0, A.object_index, C.object_index],
               [[0, 1, A.verb_index], [0, 2, C.verb_index]]),
        _image("b.jpg", [P1, O1, P2, O2], [0, B.object_index, 0, B.object_index],
               [[0, 1, B.verb_index], [2, 3, B.verb_index]]),
    ]
    train = {(0, A.object_index, A.verb_index): 20, (0, B.object_index, B.verb_index): 3,
             (0, C.object_index, C.verb_index): 50}
    corre = np.zeros((NUM_HICO_VERBS, NUM_OBJECT_CLASSES))  # the dataset defines A and B only
    corre[A.verb_index, A.object_index] = corre[B.verb_index, B.object_index] = 1
    known = {"a.jpg": np.array([A.object_index, C.object_index]), "b.jpg": np.array([B.object_index])}
    gt = HicoGroundTruth(test, train, corre, known)
    preds = [_pred("a.jpg", P1, O1, A, 0.9), _pred("b.jpg", P1, O1, B, 0.8)]
    return gt, preds


def _pred(name, sub, obj, cat, score):
    return ImagePrediction(name, np.float32([sub]), np.float32([obj]), np.int64([cat.object_index]),
                           np.float32([score]), np.int64([cat.verb_index]))


def _headline(result):
    return result["mAP"], result["mAP rare"], result["mAP non-rare"], result["num_categories_evaluated"]


@pytest.mark.parametrize("setting", ["default", "known_object"])
def test_official_protocol_scopes(setting):
    gt, preds = _case()
    everything = evaluate_hico(gt, preds, "official", setting)
    # 600 categories; rare = fewer than 10 training instances: B and the 597 never seen in training
    assert everything["category_scope"] == "all" and everything["options"]["category_scope"] == "all"
    assert _headline(everything) == pytest.approx(((1 + AP_B) / 600, AP_B / 598, (1 + 0) / 2, 600), abs=1e-15)
    dataset = evaluate_hico(gt, preds, "official", setting, category_scope="dataset")
    assert dataset["category_scope"] == "dataset"
    assert _headline(dataset) == pytest.approx(((1 + AP_B) / 2, AP_B, 1.0, 2), abs=1e-15)
    assert [r["hoi_id"] for r in dataset["per_category"]] == sorted([A.hoi_id, B.hoi_id])


def test_qpic_protocol_scopes():
    gt, preds = _case()
    # the test triplets A, C, B (order of first appearance); C: GT but no detection -> AP 0
    everything = evaluate_hico(gt, preds)
    assert _headline(everything) == pytest.approx(((1 + AP_B + 0) / 3, AP_B, (1 + 0) / 2, 3), abs=1e-15)
    dataset = evaluate_hico(gt, preds, category_scope="dataset")
    assert _headline(dataset) == pytest.approx(((1 + AP_B) / 2, AP_B, 1.0, 2), abs=1e-15)
    assert [r["triplet"] for r in dataset["per_category"]] == [[0, A.object_index, A.verb_index],
                                                                [0, B.object_index, B.verb_index]]


def test_unknown_scope_is_refused():
    gt, preds = _case()
    with pytest.raises(HqmError, match="category_scope 'some'"):
        evaluate_hico(gt, preds, category_scope="some")


def test_command_records_the_scope(hico_dir, tmp_path):
    """On disk through ``hqm eval-predictions``: with the full validity matrix both scopes agree;
    with a matrix that allows only some of the fixture's categories, ``dataset`` evaluates exactly those."""
    root = tmp_path / "root"
    shutil.copytree(hico_dir / "annotations", root / "annotations")
    preds_path = hico_dir / "predictions_triplets.json"

    def run(scope):
        out = tmp_path / f"m_{scope}.json"
        assert main(["eval-predictions", str(preds_path), "--root", str(root), "--format", "hico", "--out", str(out),
                     "--no-per-category", "--category-scope", scope]) == 0
        return json.loads(out.read_text())["hico"]

    full_all, full_dataset = run("all"), run("dataset")
    for protocol, setting in (("qpic", "default"), ("official", "default"), ("official", "known_object")):
        assert full_dataset[protocol][setting]["category_scope"] == "dataset"
        assert full_dataset[protocol][setting]["mAP"] == full_all[protocol][setting]["mAP"]
    # keep the first 40 HOI categories only
    corre = np.load(root / "annotations" / "corre_hico.npy")
    keep = np.zeros_like(corre)
    for c in CATS[:40]:
        keep[c.verb_index, c.object_index] = corre[c.verb_index, c.object_index]
    np.save(root / "annotations" / "corre_hico.npy", keep)
    part = run("dataset")
    assert part["official"]["default"]["num_categories_evaluated"] == int((keep > 0).sum()) == 40
    gt = load_hico_ground_truth(root / "annotations")
    ref = evaluate_hico(gt, read_predictions(preds_path, NUM_HICO_VERBS), "official", category_scope="dataset")
    assert part["official"]["default"]["mAP"] == ref["mAP"]
    assert part["official"]["default"]["mAP"] != run("all")["official"]["default"]["mAP"]


def test_all_point_ap_option_reaches_the_result(monkeypatch, tmp_path):
    """``ap_interpolation: all_point`` (the demo's in-training curve): B, recall .5 at precision 1,
    scores .5 instead of 6/11; the option travels from TrainConfig through the selection EvalConfig
    and ``evaluate_dataset`` and is recorded under ``options``."""
    from hqm.config import TrainConfig
    from hqm.engine.selection import selection_eval_config
    from hqm.evaluation import run

    gt, preds = _case()
    result = evaluate_hico(gt, preds, ap_interpolation="all_point")
    assert _headline(result) == pytest.approx(((1 + 0.5 + 0) / 3, 0.5, (1 + 0) / 2, 3), abs=1e-15)
    assert result["options"]["ap_interpolation"] == "all_point"
    assert evaluate_hico(gt, preds)["options"]["ap_interpolation"] == "eleven_point"
    cfg = selection_eval_config(TrainConfig(eval_ap_interpolation="all_point", eval_category_scope="dataset"))
    monkeypatch.setattr(run, "load_hico_ground_truth", lambda _root: gt)
    block = run.evaluate_dataset("hico", tmp_path, preds, cfg, per_category=False)["hico"]["qpic"]["default"]
    assert block["options"]["ap_interpolation"] == "all_point"
    assert block["mAP"] == pytest.approx((1 + 0.5) / 2, abs=1e-15)  # the dataset's A and B
