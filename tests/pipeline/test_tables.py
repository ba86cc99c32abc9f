"""Tables from metrics files: means, std, n, published numbers, differences, notes, formats."""

import csv
import io
import math

import pytest

from hqm.errors import HqmError
from hqm.io import write_json
from hqm.reporting import tables
from hqm.reporting.paper import PUBLISHED, find_published


def hico_metrics(variant, method, seed, full, rare, nonrare, ko=None):
    section = {"mAP": full, "mAP rare": rare, "mAP non-rare": nonrare, "mean max recall": 0.5}
    official = {"default": dict(section)}
    if ko is not None:
        official["known_object"] = {"mAP": ko[0], "mAP rare": ko[1], "mAP non-rare": ko[2]}
    return {"dataset": "hico_det", "format": "hico", "variant": variant, "method": method, "seed": seed,
            "epoch": 3, "selected_on_test": False, "hico": {"qpic": {"default": section}, "official": official}}


def vcoco_metrics(variant, method, seed, s1, s2):
    return {"dataset": "vcoco", "format": "vcoco", "variant": variant, "method": method, "seed": seed,
            "vcoco": {"official": {"role_ap_s1_24": s1, "role_ap_s2_24": s2, "agent_ap": 60.0}}}


@pytest.fixture
def runs():
    return [
        ("a", hico_metrics("qpic", "qpic", 1, 0.30, 0.20, 0.32, ko=(0.33, 0.25, 0.35))),
        ("b", hico_metrics("qpic", "qpic", 2, 0.32, 0.24, 0.34, ko=(0.35, 0.27, 0.37))),
        ("c", hico_metrics("gbs", "gbs", 1, 0.31, 0.22, 0.33)),
        ("d", hico_metrics("hqm", "hqm", 1, 0.315, 0.25, 0.33, ko=(0.34, 0.30, 0.36))),
        ("e", vcoco_metrics("qpic", "qpic", 1, 60.0, 62.0)),
        ("f", vcoco_metrics("hqm", "hqm", 1, 64.0, 65.0)),
    ]


def test_rows_hold_percent_mean_std_and_n(runs):
    hico, vcoco = tables.build_tables(runs, variant_order=["qpic", "gbs", "hqm"])
    assert [r.variant for r in hico.rows] == ["qpic", "gbs", "hqm"]
    mean, std, n = hico.rows[0].stats("default_full")
    assert n == 2 and mean == pytest.approx(31.0) and std == pytest.approx(math.sqrt(2.0))
    assert hico.rows[1].stats("ko_full") == (None, None, 0)  # gbs run without Known-Object
    assert vcoco.rows[1].stats("role_ap_s1") == (64.0, None, 1)


def test_markdown_has_published_numbers_difference_and_notes(runs):
    hico, vcoco = tables.build_tables(runs)
    md = tables.render_markdown(hico)
    qpic_line = next(line for line in md.splitlines() if line.startswith("| qpic"))
    assert "31.00 ± 1.41" in qpic_line and "29.07" in qpic_line and "+1.93" in qpic_line
    gbs_line = next(line for line in md.splitlines() if line.startswith("| gbs"))
    assert tables.NOT_PUBLISHED in gbs_line and tables.MISSING in gbs_line
    hqm_line = next(line for line in md.splitlines() if line.startswith("| hqm"))
    assert "34.09†" in hqm_line and "CDN-S" in md  # the flagged Known-Object triple
    vmd = tables.render_markdown(vcoco)
    hqm_v = next(line for line in vmd.splitlines() if line.startswith("| hqm"))
    assert "63.60" in hqm_v and "+0.40" in hqm_v and tables.NOT_PUBLISHED in hqm_v  # no S2 published
    assert "re-trained on COCO without" in vmd and "re-trained" not in md


def test_latex_is_booktabs_and_escaped(runs):
    tex = tables.render_latex(tables.build_tables(runs)[0])
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){3-5}"):
        assert rule in tex
    assert r"31.00 $\pm$ 1.41" in tex and "±" not in tex
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert all(line.count("&") == 1 + 3 * 6 for line in body[1:])


def test_csv_numbers(runs):
    rows = list(csv.DictReader(io.StringIO(tables.render_csv(tables.build_tables(runs)[0]))))
    qpic = rows[0]
    assert qpic["n"] == "2" and float(qpic["default_full_mean"]) == pytest.approx(31.0)
    assert float(qpic["default_full_diff"]) == pytest.approx(31.0 - 29.07)
    assert rows[1]["default_full_published"] == "" and rows[1]["ko_full_mean"] == ""


def test_write_tables_from_files(tmp_path, runs):
    paths = []
    for name, data in runs:
        write_json(tmp_path / f"{name}.json", data)
        paths.append(tmp_path / f"{name}.json")
    written = tables.write_tables(paths, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        f"{d}.{e}" for d in ("hico_det", "vcoco") for e in ("md", "tex", "csv")
    )


def test_bad_metrics_name_the_file(tmp_path):
    bad = hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3)
    del bad["seed"]
    write_json(tmp_path / "m.json", bad)
    with pytest.raises(HqmError, match="m.json: missing key 'seed'"):
        tables.write_tables([tmp_path / "m.json"], tmp_path)
    runs = [("x.json", hico_metrics("qpic", "qpic", 1, "0.3", 0.2, 0.3))]
    with pytest.raises(HqmError, match=r"x.json: hico.default.mAP"):
        tables.build_tables(runs)
    twice = [("y.json", hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3))] * 2
    with pytest.raises(HqmError, match="seed 1 of 'qpic' appears twice"):
        tables.build_tables(twice)


def test_published_numbers_match_the_issue():
    assert find_published("qpic", "hico").values["default_full"] == 29.07
    assert find_published("qpic", "hico", "resnet101").values["ko_full"] == 32.38
    assert find_published("hqm", "vcoco").values == {"role_ap_s1": 63.6}
    assert find_published("gbs", "hico") is None
    assert all(row.source for row in PUBLISHED)


def test_hico_protocol_choice(runs):
    runs[0][1]["hico"]["qpic"]["default"]["mAP"] = 0.5
    official = tables.build_tables(runs[:1])[0]
    qpic = tables.build_tables(runs[:1], hico_protocol="qpic")[0]
    assert official.rows[0].stats("default_full")[0] == pytest.approx(30.0)
    assert qpic.rows[0].stats("default_full")[0] == pytest.approx(50.0)
    assert "from the qpic protocol" in tables.render_markdown(qpic)
    del runs[1][1]["hico"]["official"]  # falls back to the other protocol
    assert tables.build_tables(runs[1:2])[0].rows[0].stats("default_full")[0] == pytest.approx(32.0)
