"""Tables in the papers' layout: rows, statistics, published rows, Δ, bold, formats, LaTeX that compiles."""

import csv
import io
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hqm.errors import HqmError
from hqm.io import write_json
from hqm.reporting import table_render, tables
from hqm.reporting.paper import PUBLISHED, find_published

REPO = Path(__file__).resolve().parents[2]


def hico_metrics(variant, method, seed, full, rare, nonrare, ko=None, checkpoint="last", dataset="hico_det"):
    section = {"mAP": full, "mAP rare": rare, "mAP non-rare": nonrare, "mean max recall": 0.5}
    official = {"default": dict(section)}
    if ko is not None:
        official["known_object"] = {"mAP": ko[0], "mAP rare": ko[1], "mAP non-rare": ko[2]}
    return {"dataset": dataset, "format": "hico", "variant": variant, "method": method, "seed": seed,
            "checkpoint": checkpoint, "epoch": 3, "hico": {"qpic": {"default": section}, "official": official}}


def vcoco_metrics(variant, method, seed, s1, s2, agent=60.0):
    return {"dataset": "vcoco", "format": "vcoco", "variant": variant, "method": method, "seed": seed,
            "checkpoint": "last", "vcoco": {"official": {"role_ap_s1_24": s1, "role_ap_s2_24": s2, "agent_ap": agent}}}


@pytest.fixture
def hico_runs():
    return [
        ("a", hico_metrics("qpic", "qpic", 1, 0.30, 0.20, 0.32, ko=(0.33, 0.25, 0.35))),
        ("b", hico_metrics("qpic", "qpic", 2, 0.32, 0.24, 0.34, ko=(0.35, 0.27, 0.37))),
        ("c", hico_metrics("gbs", "gbs", 1, 0.31, 0.22, 0.33)),
        ("d", hico_metrics("hqm", "hqm", 1, 0.315, 0.25, 0.33, ko=(0.34, 0.30, 0.36))),
        ("e", hico_metrics("hqm", "hqm", 1, 0.335, 0.25, 0.33, ko=(0.34, 0.30, 0.36), checkpoint="best")),
    ]


def row(table, kind, method, checkpoint=None, backbone="resnet50"):
    return next(r for r in table.rows() if (r.kind, r.method, r.backbone) == (kind, method, backbone)
                and (checkpoint is None or r.checkpoint == checkpoint))


def test_rows_grouped_per_backbone_with_published_ours_and_delta(hico_runs):
    table = tables.build_table(hico_runs, "hico_det", "resnet50", ["qpic", "gbs", "amm", "hqm"])
    assert [bb for bb, _ in table.blocks] == ["resnet50", "resnet101"]
    kinds = [(r.kind, r.method, r.checkpoint) for r in table.blocks[0][1]]
    assert kinds == [("published", "qpic", None), ("published", "hqm", None),
                     ("ours", "qpic", "last"), ("delta", "qpic", "last"), ("ours", "gbs", "last"),
                     ("ours", "hqm", "last"), ("delta", "hqm", "last"), ("ours", "hqm", "best"), ("delta", "hqm", "best")]
    qpic = row(table, "ours", "qpic")
    mean, std = qpic.values["default_full"]
    assert qpic.seeds == [1, 2] and mean == pytest.approx(31.0) and std == pytest.approx(math.sqrt(2.0))
    assert row(table, "delta", "qpic").values["default_full"][0] == pytest.approx(31.0 - 29.07)
    assert row(table, "ours", "hqm", "best").values["default_full"][0] == pytest.approx(33.5)
    assert "ko_full" not in row(table, "ours", "gbs").values  # run without Known-Object
    assert row(table, "published", "qpic", backbone="resnet101").cite == "tamura2021qpic"


def test_bold_marks_the_best_of_each_column(hico_runs):
    table = tables.build_table(hico_runs, "hico_det", "resnet50")
    for metric in table.metrics:
        values = [r.values[metric][0] for r in table.rows() if r.kind != "delta" and metric in r.values]
        bold = [r.values[metric][0] for r in table.rows() if metric in r.bold]
        assert bold and all(b == max(values) for b in bold)
    assert "default_rare" in row(table, "published", "hqm").bold  # 26.54 beats ours
    assert "default_full" in row(table, "ours", "hqm", "best").bold
    assert not any(r.bold for r in table.rows() if r.kind == "delta")


def test_a_column_where_every_row_ties_is_not_bold():
    runs = [(v, vcoco_metrics(v, v, 1, 30.0 + i, 31.0 + i, agent=0.0)) for i, v in enumerate(("qpic", "gbs"))]
    table = tables.build_table(runs, "vcoco", "resnet50")  # no published agent AP: only ours in that column
    assert all("agent_ap" not in r.bold for r in table.rows())  # 0.00 everywhere singles out nothing
    assert "agent_ap" in {m for r in table.rows() for m in r.values}
    assert any("role_ap_s1" in r.bold for r in table.rows())


def test_synthetic_tables_make_no_comparison(hico_runs):
    table = tables.build_table(hico_runs, "hico_det", "resnet18", synthetic=True)
    assert {r.kind for r in table.rows()} == {"ours"}
    md = table_render.render_markdown(table)
    assert "no comparison with the published numbers applies" in md and "29.07" not in md
    assert "synthetic data" in table_render.render_latex(table)


def test_no_delta_for_an_unpublished_backbone(hico_runs):
    table = tables.build_table(hico_runs, "hico_det", "resnet18")
    assert not any(r.kind == "delta" for r in table.rows())
    assert any(r.kind == "published" for r in table.rows())
    assert any("Nothing was published for R18" in note for note in table.notes)


def test_markdown_layout(hico_runs):
    md = table_render.render_markdown(tables.build_table(hico_runs, "hico_det", "resnet50"))
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols == ["Method", "Backbone", "Checkpoint", "n", "Default Full", "Default Rare", "Default Non-rare",
                    "Known Object Full", "Known Object Rare", "Known Object Non-rare"]
    lines = md.splitlines()
    ours = next(line for line in lines if line.startswith("| QPIC (ours)"))
    assert "31.00 ± 1.41" in ours and "| R50" in ours and "| last (ep. 3)" in ours
    gbs = next(line for line in lines if line.startswith("| QPIC + GBS (ours)"))
    assert gbs.count("| –") >= 3  # nothing for Known-Object
    pub_hqm = next(line for line in lines if line.startswith("| QPIC + HQM [zhong2022hqm]"))
    assert "**26.54**" in pub_hqm and "34.09†" in pub_hqm and "CDN-S" in md
    assert next(line for line in lines if line.startswith("| Δ to [tamura2021qpic]")).count("+1.93") == 1


def test_vcoco_columns_and_missing_published_values():
    runs = [("e", vcoco_metrics("qpic", "qpic", 1, 60.0, 62.0)), ("f", vcoco_metrics("hqm", "hqm", 1, 64.0, 65.0))]
    table = tables.build_table(runs, "vcoco", "resnet50", ["qpic", "hqm"])
    assert table.metrics == ("role_ap_s1", "role_ap_s2", "agent_ap")
    md = table_render.render_markdown(table)
    hqm_pub = next(line for line in md.splitlines() if line.startswith("| QPIC + HQM [zhong2022hqm]"))
    assert "63.60" in hqm_pub and hqm_pub.count("–") >= 2  # S2 and agent AP not published
    delta = next(line for line in md.splitlines() if line.startswith("| Δ to [zhong2022hqm]"))
    assert "+0.40" in delta
    assert "re-trained on COCO without" in md
    tex = table_render.render_latex(table)
    assert r"\multicolumn{2}{c}{Role AP}" in tex and r"\cmidrule(lr){5-6}" in tex


def test_latex_structure(hico_runs):
    tex = table_render.render_latex(tables.build_table(hico_runs, "hico_det", "resnet50", ["qpic", "gbs", "hqm"]))
    assert tex.isascii()
    lines = tex.splitlines()
    assert lines[1].startswith(r"\begin{table}") and lines[-1] == r"\end{table}"
    for needle in (r"\caption{", r"\label{tab:hico_det}", r"\toprule", r"\midrule", r"\bottomrule",
                   r"\multicolumn{3}{c}{Default}", r"\multicolumn{3}{c}{Known Object}",
                   r"\cmidrule(lr){5-7}\cmidrule(lr){8-10}", r"\cite{tamura2021qpic}", r"\cite{zhong2022hqm}",
                   r"\shortstack{31.00\\{\tiny$\pm$1.41}}", r"\textbf{26.54}"):
        assert needle in tex, needle
    assert tex.index(r"\begin{tabular}") < tex.index(r"\end{tabular}")
    body = [line for line in lines if line.endswith(r"\\")]
    assert all(line.count("&") == 9 for line in body[1:])  # 4 label columns + 6 metrics
    assert "not published" not in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs a TeX engine (structure checked above)")
def test_latex_compiles_as_pasted(tmp_path, hico_runs):
    (tmp_path / "table.tex").write_text(
        table_render.render_latex(tables.build_table(hico_runs, "hico_det", "resnet50")))
    shutil.copy(REPO / "references.bib", tmp_path / "references.bib")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{table}\n"
        "\\bibliographystyle{plain}\n\\bibliography{references}\n\\end{document}\n")
    latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"]
    for cmd in (latex, ["bibtex", "doc"], latex, latex):
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "undefined" not in log  # both cite keys resolved by references.bib
    assert "Overfull \\hbox" not in log  # fits the text width of a one-column paper (article: 345 pt)
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_csv_carries_the_same_rows(hico_runs):
    table = tables.build_table(hico_runs, "hico_det", "resnet50")
    rows = list(csv.DictReader(io.StringIO(table_render.render_csv(table))))
    data = [r for r in rows if r["row"] != "note"]
    assert [(r["row"], r["method"], r["checkpoint"]) for r in data] == [
        (r.kind, r.method, r.checkpoint or "") for r in table.rows()]
    qpic = next(r for r in data if r["row"] == "ours" and r["method"] == "qpic")
    assert qpic["n"] == "2" and float(qpic["default_full"]) == pytest.approx(31.0)
    assert float(qpic["default_full_std"]) == pytest.approx(math.sqrt(2.0), abs=1e-4)
    assert next(r for r in data if r["row"] == "ours" and r["method"] == "gbs")["ko_full"] == ""
    assert next(r for r in data if r["cite"] == "zhong2022hqm")["bold"] == "default_rare ko_full"
    assert [r["label"] for r in rows if r["row"] == "note"] == table.notes


def test_write_tables_and_cli(tmp_path, hico_runs):
    from hqm.cli import main

    paths = []
    for name, data in hico_runs:
        write_json(tmp_path / f"{name}.json", data)
        paths.append(str(tmp_path / f"{name}.json"))
    out = tmp_path / "tables"
    assert main(["tables", "--metrics", *paths, "--out-dir", str(out), "--dataset", "hico_det",
                 "--backbone", "resnet50", "--variants", "qpic", "gbs", "amm", "hqm"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["hico_det.csv", "hico_det.md", "hico_det.tex"]
    assert main(["tables", "--metrics", *paths, "--out-dir", str(tmp_path / "syn"), "--dataset", "hico_det",
                 "--backbone", "resnet18", "--synthetic"]) == 0
    assert "29.07" not in (tmp_path / "syn" / "hico_det.md").read_text()


def test_bad_metrics_name_the_file(tmp_path, capsys):
    from hqm.cli import main

    bad = hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3)
    del bad["seed"]
    write_json(tmp_path / "m.json", bad)
    with pytest.raises(HqmError, match="m.json: missing key 'seed'"):
        table_render.write_tables([tmp_path / "m.json"], tmp_path, "hico_det")
    with pytest.raises(HqmError, match=r"x.json: hico.default.mAP"):
        tables.build_table([("x.json", hico_metrics("qpic", "qpic", 1, "0.3", 0.2, 0.3))], "hico_det")
    twice = [("y.json", hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3))] * 2
    with pytest.raises(HqmError, match=r"seed 1 of 'qpic' \(last\) appears twice"):
        tables.build_table(twice, "hico_det")
    other = [("z.json", hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3, dataset="elsewhere"))]
    with pytest.raises(HqmError, match="z.json: dataset: 'elsewhere', but the table is for 'hico_det'"):
        tables.build_table(other, "hico_det")
    labelled = hico_metrics("qpic", "qpic", 1, 0.3, 0.2, 0.3, checkpoint="middle")
    write_json(tmp_path / "c.json", labelled)
    assert main(["tables", "--metrics", str(tmp_path / "c.json"), "--out-dir", str(tmp_path / "o"),
                 "--dataset", "hico_det"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "c.json: checkpoint: 'middle'" in err[0]
    assert not (tmp_path / "o").exists()


def test_published_numbers_live_in_paper_py():
    assert find_published("qpic", "hico").values["default_full"] == 29.07
    assert find_published("qpic", "hico", "resnet101").values["ko_full"] == 32.38
    assert find_published("hqm", "vcoco").values == {"role_ap_s1": 63.6}
    assert find_published("qpic", "hico", "resnet18") is None  # no fallback to another backbone
    assert find_published("gbs", "hico") is None
    assert all(r.source and r.cite in ("tamura2021qpic", "zhong2022hqm") for r in PUBLISHED)
    bib = (REPO / "references.bib").read_text()
    assert all(f"{{{r.cite}," in bib for r in PUBLISHED)


def test_hico_protocol_choice(hico_runs):
    hico_runs[0][1]["hico"]["qpic"]["default"]["mAP"] = 0.5
    official = tables.build_table(hico_runs[:1], "hico_det")
    qpic = tables.build_table(hico_runs[:1], "hico_det", hico_protocol="qpic")
    assert row(official, "ours", "qpic").values["default_full"][0] == pytest.approx(30.0)
    assert row(qpic, "ours", "qpic").values["default_full"][0] == pytest.approx(50.0)
    assert any("from the qpic protocol" in n for n in qpic.notes)


def test_readme_bibtex_is_references_bib():
    readme = (REPO / "README.md").read_text()
    citing = readme[readme.index("## Citing"):]
    block = citing[citing.index("```bibtex\n") + len("```bibtex\n"):]
    block = block[:block.index("```")]
    bib = (REPO / "references.bib").read_text()
    entries = bib[bib.index("@inproceedings"):]
    assert block.strip() == entries.strip()
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["license"] == "Apache-2.0" and len(cff["references"]) == 2
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]


def test_checkpoint_column_names_the_epochs(hico_runs):
    hico_runs[1][1]["epoch"] = 7  # seed 2 of qpic ended elsewhere
    table = tables.build_table(hico_runs, "hico_det", "resnet50")
    assert table_render.checkpoint_text(row(table, "ours", "qpic")) == "last (ep. 3–7)"
    assert table_render.checkpoint_text(row(table, "ours", "hqm", "best")) == "best (ep. 3)"
    assert table_render.checkpoint_text(row(table, "published", "qpic")) == "–"
    assert r"\shortstack{last\\{\tiny ep. 3--7}}" in table_render.render_latex(table)
