"""The hico_eval fixture: QPIC protocol (both layouts, Q3 variant) and official Default / KO."""

import json

import pytest

from hqm.evaluation.hico import evaluate_hico, load_hico_ground_truth
from hqm.evaluation.predictions import read_predictions

HEADLINE = ("mAP", "mAP rare", "mAP non-rare", "mean max recall")
CASES = ("predictions_triplets.json", "predictions_qpic_layout.json.gz")


@pytest.fixture(scope="module")
def gt(hico_dir):
    return load_hico_ground_truth(hico_dir / "annotations")


@pytest.fixture(scope="module")
def expected(hico_dir):
    return json.loads((hico_dir / "expected.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_qpic_protocol_reproduces_every_number(gt, expected, hico_dir, case):
    exp = expected["cases"][case]
    result = evaluate_hico(gt, read_predictions(hico_dir / case, 117))
    for key in HEADLINE:
        assert result[key] == pytest.approx(exp[key], abs=1e-12), key
    assert result["num_categories_evaluated"] == exp["num_categories_evaluated"]
    assert result["num_test_images"] == exp["num_test_images"]
    assert result["num_test_images_without_predictions"] == exp["num_test_images_without_predictions"]
    assert result["num_categories_rare"] == exp["num_categories_rare"]
    assert result["num_categories_non_rare"] == exp["num_categories_non_rare"]
    assert [r["triplet"] for r in result["per_category"]] == [r["triplet"] for r in exp["per_category"]]
    for mine, ref in zip(result["per_category"], exp["per_category"]):
        assert mine["hoi_id"] == ref["hoi_id"] and mine["split"] == ref["split"]
        assert (mine["num_gt"], mine["num_det"], mine["num_tp"]) == (ref["num_gt"], ref["num_det"], ref["num_tp"])
        assert mine["ap"] == pytest.approx(ref["ap"], abs=1e-12), ref["triplet"]
        assert mine["max_recall"] == pytest.approx(ref["max_recall"], abs=1e-12), ref["triplet"]


@pytest.mark.parametrize("case", CASES)
def test_q3_off_variant(gt, expected, hico_dir, case):
    exp = expected["cases"][case]["variant_fp_on_images_without_gt"]
    result = evaluate_hico(gt, read_predictions(hico_dir / case, 117), fp_on_images_without_gt=True)
    for key in HEADLINE:
        assert result[key] == pytest.approx(exp[key], abs=1e-12), key


def test_highlighted_categories(gt, expected, hico_dir):
    result = evaluate_hico(gt, read_predictions(hico_dir / CASES[0], 117))
    rows = {tuple(r["triplet"]): r for r in result["per_category"]}
    for ref in expected["highlighted_categories"]:
        mine = rows[tuple(ref["triplet"])]
        assert mine["ap"] == pytest.approx(ref["ap"], abs=1e-12) and mine["num_tp"] == ref["num_tp"]


@pytest.mark.parametrize("setting", ["default", "known_object"])
def test_official_protocol(gt, hico_dir, setting):
    exp = json.loads((hico_dir / "expected_official.json").read_text())
    preds = read_predictions(hico_dir / CASES[0], 117)
    result = evaluate_hico(gt, preds, "official", setting)
    if setting == "known_object":  # the fixture has no known_objects_test.json
        assert result["known_objects_source"] == "derived_from_test_gt"
    assert result["mAP"] == pytest.approx(exp[setting]["mAP full"], abs=1e-9)
    assert result["mAP rare"] == pytest.approx(exp[setting]["mAP rare"], abs=1e-9)
    assert result["mAP non-rare"] == pytest.approx(exp[setting]["mAP non-rare"], abs=1e-9)
    key = "ap_default" if setting == "default" else "ap_known_object"
    assert [r["hoi_id"] for r in result["per_category"]] == [r["hoi_id"] for r in exp["per_category"]]
    for mine, ref in zip(result["per_category"], exp["per_category"]):
        assert mine["ap"] == pytest.approx(ref[key], abs=1e-9), ref["hoi_id"]
        assert mine["num_gt"] == ref["npos_test"]
        assert (mine["split"] == "rare") == (ref["num_inst_train"] < 10)
    octave = evaluate_hico(gt, preds, "official", setting, ap_thresholds="numpy_arange")
    assert octave["mAP"] == pytest.approx(exp["octave_colon_variant"][setting]["mAP full"], abs=1e-9)
    assert octave["mAP non-rare"] == pytest.approx(exp["octave_colon_variant"][setting]["mAP non-rare"], abs=1e-9)
