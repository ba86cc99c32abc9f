"""Training curves and per-category figures: the numbers drawn, the files, the wide CSVs."""

import csv
import json

import pytest
from PIL import Image

from hqm.errors import HqmError
from hqm.reporting import categories, plots


def write_log(path, epochs, offset=0.0, with_test=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for e in epochs:
        rec = {"epoch": e, "lr": 1e-4, "train_loss": 10.0 / e + offset, "train_loss_verb_ce": 5.0 / e,
               "train_gbs_loss_obj_ce": 1.0, "epoch_time": 3.0}
        if with_test and e % 2 == 0:
            rec["test"] = {"official": {"default": {"mAP": 0.1 * e + offset / 100}}}
        lines.append(json.dumps(rec))
    path.write_text("\n".join(reversed(lines)) + "\n")  # order is restored by epoch
    return path


def test_curve_rows_match_the_run_curves_contract(tmp_path):
    rows = plots.read_run_curves(write_log(tmp_path / "runs/d/qpic/seed1/log.jsonl", [1, 2]))
    assert rows[0] == {"epoch": 1, "lr": 1e-4, "loss": 10.0, "loss_verb_ce": 5.0, "loss_gbs_obj_ce": 1.0}
    assert rows[1]["map"] == pytest.approx(20.0)  # percent
    text = plots.run_curves_csv(rows)
    assert text.splitlines()[0] == "epoch,lr,loss,loss_gbs_obj_ce,loss_verb_ce,map"
    (tmp_path / "curves.csv").write_text(text)
    again = plots.read_curves_csv(tmp_path / "curves.csv")
    assert again[0] == pytest.approx(rows[0]) and again[1]["map"] == pytest.approx(20.0)
    assert "map" not in again[0]  # empty cell where not evaluated


def test_vcoco_headline_is_role_ap_in_percent():
    row = plots.curve_row({"epoch": 2, "test/official/role_ap_s1_24": 31.5, "test/official/role_ap_s2_24": 33.0})
    assert row == {"epoch": 2, "map": 31.5}


def test_curves_mean_std_per_variant_and_files(tmp_path):
    logs = [write_log(tmp_path / f"runs/d/{v}/seed{s}/log.jsonl", [1, 2, 3, 4], offset=s)
            for v in ("qpic", "hqm") for s in (1, 3)]
    written = plots.write_curves(logs, tmp_path / "plots", "d", ["qpic", "hqm"])
    assert [p.name for p in written] == ["d_curves.png", "d_curves.pdf", "d_curves.csv"]
    with Image.open(written[0]) as img:
        assert img.info["dpi"] == pytest.approx((200, 200), abs=0.1) and img.size == (2000, 760)
    assert written[1].read_bytes()[:5] == b"%PDF-"
    table = list(csv.DictReader(written[2].open()))
    assert list(table[0])[:7] == ["epoch", "qpic_loss_mean", "qpic_loss_std", "qpic_loss_n",
                                  "qpic_map_mean", "qpic_map_std", "qpic_map_n"]
    first, second = table[0], table[1]
    assert float(first["qpic_loss_mean"]) == pytest.approx(12.0)  # 10/1 + mean(1, 3)
    assert float(first["qpic_loss_std"]) == pytest.approx(2 ** 0.5, abs=1e-4)
    assert first["qpic_map_mean"] == "" and float(second["hqm_map_mean"]) == pytest.approx(22.0)  # 100 * (0.2 + mean(0.01, 0.03))
    assert second["hqm_map_n"] == "2"


def test_bad_logs_name_the_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\n{"epoch": \n')
    with pytest.raises(HqmError, match="bad.jsonl: line 2"):
        plots.read_log(tmp_path / "bad.jsonl")
    (tmp_path / "noepoch.jsonl").write_text('{"loss": 1}\n')
    with pytest.raises(HqmError, match="line 1: expected an object with an 'epoch' key"):
        plots.read_log(tmp_path / "noepoch.jsonl")
    (tmp_path / "c.csv").write_text("epoch,loss\n1,x\n")
    with pytest.raises(HqmError, match=r"c.csv: line 2: loss: 'x' is not a number"):
        plots.read_curves_csv(tmp_path / "c.csv")
    with pytest.raises(HqmError, match=r"log.jsonl: expected runs/<dataset>/<variant>/seed<s>/log.jsonl"):
        plots.variant_of(tmp_path / "log.jsonl")


def metrics_with_categories(variant, method, seed, gain):
    rows = [{"triplet": [0, i, 1], "hoi_id": i, "split": split, "ap": ap + gain}
            for i, (split, ap) in enumerate([("rare", 0.1), ("rare", 0.2), ("non-rare", 0.5), ("test-only", 0.9)])]
    return {"dataset": "d", "format": "hico", "variant": variant, "method": method, "seed": seed,
            "checkpoint": "last", "hico": {"official": {"default": {"mAP": 0.3, "per_category": rows}}}}


def test_per_category_ap_mean_over_seeds(tmp_path):
    paths = []
    for variant, method, seed, gain in (("qpic", "qpic", 1, 0.0), ("qpic", "qpic", 2, 0.02), ("hqm", "hqm", 1, 0.1)):
        path = tmp_path / f"{variant}{seed}.json"
        path.write_text(json.dumps(metrics_with_categories(variant, method, seed, gain)))
        paths.append(path)
    best = metrics_with_categories("hqm", "hqm", 1, 0.5) | {"checkpoint": "best"}
    (tmp_path / "best.json").write_text(json.dumps(best))
    cats, methods, fmt = categories.category_ap(paths + [tmp_path / "best.json"])
    assert fmt == "hico" and methods == {"qpic": "qpic", "hqm": "hqm"}
    assert cats["qpic"]["0-0-1"] == ("rare", pytest.approx(11.0))  # mean of 10 and 12 %
    assert cats["hqm"]["0-2-1"] == ("non-rare", pytest.approx(60.0))  # the last checkpoint, not best
    assert "0-3-1" not in cats["qpic"]  # test-only categories have no split
    written = categories.write_category_figure(paths, tmp_path / "plots", "d", ["qpic", "hqm"])
    with Image.open(written[0]) as img:
        assert img.size == (1680, 760) and img.info["dpi"] == pytest.approx((200, 200), abs=0.1)
    assert written[1].read_bytes()[:5] == b"%PDF-"


def test_vcoco_categories_are_the_24_reported_roles():
    pairs = {"hit-instr": 0.5, "point-instr": 0.9, "eat-obj": None}
    data = {"vcoco": {"official": {"role_ap_per_pair_s1": pairs}}}
    assert categories.vcoco_categories(data, "m.json") == {"hit-instr": ("role", 50.0)}


def test_plots_cli(tmp_path, capsys):
    from hqm.cli import main

    logs = [str(write_log(tmp_path / f"runs/d/{v}/seed1/log.jsonl", [1, 2])) for v in ("qpic", "gbs")]
    (tmp_path / "m.json").write_text(json.dumps(metrics_with_categories("qpic", "qpic", 1, 0.0)))
    out = tmp_path / "results/plots"
    assert main(["plots", "--logs", *logs, "--metrics", str(tmp_path / "m.json"), "--out-dir", str(out),
                 "--dataset", "d"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "d_categories.pdf", "d_categories.png", "d_curves.csv", "d_curves.pdf", "d_curves.png"]
    capsys.readouterr()
    assert main(["plots", "--logs", str(tmp_path / "nowhere/seed1/log.jsonl"), "--out-dir", str(tmp_path / "x"),
                 "--dataset", "d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "log.jsonl: file not found" in err[0] and not (tmp_path / "x").exists()
