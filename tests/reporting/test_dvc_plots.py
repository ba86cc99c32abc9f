"""DVC top-level plots over the runs' wide curves.csv: one series per run and metric."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hqm.reporting import plots

VENV_BIN = Path(sys.executable).parent


def dvc(repo, *args):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", DVC_NO_ANALYTICS="1")
    done = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def series(plot_json: dict) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """``{(plot id, y field): [(epoch, value), ...]}`` from ``dvc plots show --json``."""
    out: dict = {}
    for plot_id, renders in plot_json["data"].items():
        for render in renders:
            for point in render["content"]["data"]["values"]:
                if point["dvc_inferred_y_value"] != "":
                    key = (plot_id, point["field"])
                    out.setdefault(key, []).append((float(point["epoch"]), float(point["dvc_inferred_y_value"])))
    return out


def test_dvc_plots_show_one_series_per_run_and_metric(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, timeout=60)
    dvc(repo, "init", "-q")
    runs = {}
    for variant, offset in (("qpic", 0.0), ("hqm", 1.0)):
        records = [{"epoch": e, "lr": 1e-4, "train_loss": 4.0 / e + offset, "train_loss_obj_ce": 1.0 / e}
                   | ({"test/official/default/mAP": 0.1 * e + offset / 100} if e % 2 == 0 else {})
                   for e in (1, 2, 3, 4)]
        path = repo / "runs" / "d" / variant / "seed1" / "curves.csv"
        path.parent.mkdir(parents=True)
        path.write_text(plots.run_curves_csv([plots.curve_row(r) for r in records]))
        runs[variant] = str(path.relative_to(repo))
    # results/plots/d_curves.csv: the aggregate over seeds, one column per variant and series
    plots.write_curves([repo / p for p in runs.values()], repo / "results" / "plots", "d", ["qpic", "hqm"])
    spec = {"plots": [{p: {"x": "epoch", "y": ["loss", "map"]}} for p in runs.values()]
            + [{"results/plots/d_curves.csv": {"x": "epoch", "y": ["qpic_map_mean", "hqm_map_mean"]}}]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))

    found = series(json.loads(dvc(repo, "plots", "show", "--json")))
    expected = {(runs[v], m) for v in runs for m in ("loss", "map")}
    expected |= {("results/plots/d_curves.csv", f"{v}_map_mean") for v in runs}
    assert set(found) == expected
    epochs, losses = zip(*found[(runs["qpic"], "loss")])
    assert epochs == (1.0, 2.0, 3.0, 4.0) and losses == pytest.approx((4.0, 2.0, 4 / 3, 1.0), abs=1e-5)
    assert found[(runs["hqm"], "map")] == [(2.0, 21.0), (4.0, 41.0)]  # percent, evaluated epochs only
    assert found[("results/plots/d_curves.csv", "qpic_map_mean")] == [(2.0, 20.0), (4.0, 40.0)]
