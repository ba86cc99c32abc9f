"""Training curves from log.jsonl files."""

import csv
import json

import pytest

from hqm.errors import HqmError
from hqm.reporting.plots import read_log, write_plots


def write_log(path, epochs, with_test=True):
    lines = []
    for e in epochs:
        rec = {"epoch": e, "train_loss": 10.0 / e, "train_loss_verb_ce": 5.0 / e, "lr": 1e-4}
        if with_test and e % 2 == 0:
            rec["test"] = {"official": {"default": {"mAP": 0.1 * e}}}
        lines.append(json.dumps(rec))
    path.write_text("\n".join(reversed(lines)) + "\n")  # order is restored by epoch


def test_png_and_csv(tmp_path):
    write_log(tmp_path / "a.jsonl", [1, 2, 3, 4])
    write_log(tmp_path / "b.jsonl", [1, 2], with_test=False)
    write_plots({"qpic/seed1": tmp_path / "a.jsonl", "hqm/seed1": tmp_path / "b.jsonl"},
                tmp_path / "c.png", tmp_path / "c.csv", "demo")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    maps = [(r["epoch"], float(r["value"])) for r in rows if r["series"] == "test/official/default/mAP"]
    assert maps == [("2", pytest.approx(0.2)), ("4", pytest.approx(0.4))]
    assert not any(r["series"] == "lr" for r in rows)
    assert {r["run"] for r in rows} == {"qpic/seed1", "hqm/seed1"}


def test_read_log_sorted_and_errors(tmp_path):
    write_log(tmp_path / "a.jsonl", [1, 2, 3])
    assert [r["epoch"] for r in read_log(tmp_path / "a.jsonl")] == [1, 2, 3]
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\n{"epoch": \n')
    with pytest.raises(HqmError, match="bad.jsonl: line 2"):
        read_log(tmp_path / "bad.jsonl")
    (tmp_path / "noepoch.jsonl").write_text('{"loss": 1}\n')
    with pytest.raises(HqmError, match="line 1: expected an object with an 'epoch' key"):
        read_log(tmp_path / "noepoch.jsonl")


def test_curve_shows_the_headline_metric_only():
    from hqm.reporting.plots import headline_accuracy_keys

    hico = [{"epoch": 1, "test/qpic/default/mAP": 0.2, "test/official/default/mAP": 0.1,
             "test/official/known_object/mAP rare": 0.0}]
    assert headline_accuracy_keys(hico) == ["test/qpic/default/mAP"]
    vcoco = [{"epoch": 1, "test/official/role_ap_s1_24": 30.0, "test/official/role_ap_s2_24": 31.0}]
    assert headline_accuracy_keys(vcoco) == ["test/official/role_ap_s1_24"]
    other = [{"epoch": 1, "test/x/mAP": 0.3, "test/y/mAP": 0.4}]
    assert headline_accuracy_keys(other) == ["test/x/mAP", "test/y/mAP"]
