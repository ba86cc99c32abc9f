"""``hqm eval-predictions`` end to end on the fixtures."""

import json

import numpy as np
import pytest

from hqm.cli import main


def test_hico_command_writes_all_protocols(hico_dir, tmp_path):
    out = tmp_path / "metrics.json"
    rc = main(["eval-predictions", str(hico_dir / "predictions_triplets.json"), "--root", str(hico_dir),
               "--format", "hico", "--out", str(out), "--no-per-category"])
    assert rc == 0
    metrics = json.loads(out.read_text())
    expected = json.loads((hico_dir / "expected.json").read_text())["cases"]["predictions_triplets.json"]
    official = json.loads((hico_dir / "expected_official.json").read_text())
    assert metrics["hico"]["qpic"]["default"]["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert metrics["hico"]["official"]["known_object"]["mAP"] == pytest.approx(official["known_object"]["mAP full"], abs=1e-9)
    assert "known_object" not in metrics["hico"]["qpic"]


def test_vcoco_command_and_pickle(vcoco_dir, tmp_path):
    root = tmp_path / "vcoco"
    (root / "official").mkdir(parents=True)
    (root / "annotations").symlink_to(vcoco_dir / "annotations")
    (root / "official" / "data").symlink_to(vcoco_dir / "data")
    out, pkl = tmp_path / "m.json", tmp_path / "dets.pkl.gz"
    rc = main(["eval-predictions", str(vcoco_dir / "predictions_qpic.json"), "--root", str(root),
               "--format", "vcoco", "--out", str(out), "--official-pickle", str(pkl)])
    assert rc == 0 and pkl.stat().st_size > 0
    metrics = json.loads(out.read_text())["vcoco"]
    expected = json.loads((vcoco_dir / "expected.json").read_text())
    assert metrics["official"]["role_ap_s1_24"] == pytest.approx(
        expected["official"]["average_role_ap_scenario_1_without_point"], abs=1e-4)
    assert metrics["qpic"]["mAP_all"] == pytest.approx(expected["qpic_python"]["mAP_all"], abs=1e-12)


def test_command_reports_bad_input_in_one_line(hico_dir, tmp_path, capsys):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"format": "triplets", "images": [{"file_name": "HICO_test2015_99999999.jpg", "triplets": []}]}))
    rc = main(["eval-predictions", str(bad), "--root", str(hico_dir), "--format", "hico", "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "HICO_test2015_99999999.jpg" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists()


def test_a_cap_below_one_is_refused_not_scored_zero(hico_dir, vcoco_dir):
    from hqm.config import EvalConfig
    from hqm.errors import HqmError
    from hqm.evaluation.hico import evaluate_hico, load_hico_ground_truth
    from hqm.evaluation.predictions import read_predictions
    from hqm.evaluation.run import evaluate_dataset
    from hqm.evaluation.vcoco import evaluate_vcoco_qpic

    preds = read_predictions(hico_dir / "predictions_triplets.json", 117)
    with pytest.raises(HqmError, match="evaluation.max_hois: must be a positive integer, got 0"):
        evaluate_dataset("hico", hico_dir, preds, EvalConfig(max_hois=0))
    with pytest.raises(HqmError, match="max_hois_per_image must be a positive integer or None, got -1"):
        evaluate_hico(load_hico_ground_truth(hico_dir / "annotations"), preds, max_hois_per_image=-1)
    with pytest.raises(HqmError, match="max_hois must be a positive integer, got 0"):
        evaluate_vcoco_qpic([], [], np.ones((29, 80)), max_hois=0)


def test_errors_name_the_predictions_file(hico_dir, tmp_path, capsys):
    data = json.loads((hico_dir / "predictions_triplets.json").read_text())
    data["images"][0]["triplets"][0]["sub_box"] = [50, 50, 10, 10]  # x2 < x1
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    rc = main(["eval-predictions", str(path), "--root", str(hico_dir), "--format", "hico",
               "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"{path}: image 'HICO_test2015_00000001.jpg': sub_boxes[0]" in err
    assert "error: predictions:" not in err and not (tmp_path / "m.json").exists()
