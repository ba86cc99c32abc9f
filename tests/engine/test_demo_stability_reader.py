"""bench/demo_stability.py reads a run's per-evaluation mAP from either run-folder layout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bench_scripts import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("demo_stability")


def _log(run: Path, maps: dict[int, float | None]) -> None:
    lines = []
    for epoch, value in maps.items():
        record = {"epoch": epoch, "lr": 1e-4}
        if value is not None:
            record["test"] = {"qpic": {"default": {"mAP": value, "mAP rare": value / 2}}}
        lines.append(json.dumps(record))
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")


def test_todays_log_jsonl(bench, tmp_path):
    _log(tmp_path, {1: None, 2: 0.10, 3: None, 4: 0.305})
    curve, rare = bench.read_curve(tmp_path)
    assert curve == [(2, pytest.approx(10.0)), (4, pytest.approx(30.5))]
    assert rare == pytest.approx(15.25)


def test_contract_curves_csv_wins_over_the_log(bench, tmp_path):
    _log(tmp_path, {1: 0.5})
    (tmp_path / "curves.csv").write_text("epoch,lr,loss,map\n1,0.1,2.0,\n2,0.1,1.5,12.5\n3,0.1,1.2,14.0\n")
    curve, rare = bench.read_curve(tmp_path)
    assert curve == [(2, 12.5), (3, 14.0)]
    assert rare == pytest.approx(25.0)  # Rare still comes from the log when it has one


@pytest.mark.parametrize(
    "values, expected",
    [
        ({"2": 0.2, "4": 0.25}, [(2, 20.0), (4, 25.0)]),  # fractions become percent
        ([None, 21.0, None, 26.0], [(2, 21.0), (4, 26.0)]),  # one entry per epoch, null = not evaluated
        ([{"epoch": 5, "value": 31.0}, {"epoch": 10, "value": 32.0}], [(5, 31.0), (10, 32.0)]),
    ],
)
def test_train_summary_selection(bench, tmp_path, values, expected):
    (tmp_path / "train_summary.json").write_text(json.dumps({"selection": {"metric": "m", "values": values}}))
    curve, rare = bench.read_curve(tmp_path)
    assert curve == [(e, pytest.approx(v)) for e, v in expected]
    assert rare is None


def test_judge_fails_an_unflattened_or_weak_run(bench, tmp_path, capsys):
    args = argparse.Namespace(min_map=30.0, max_diff=2.0, max_std=3.0, variants=["qpic"])
    runs = []
    for seed, maps in ((1, {8: 0.31, 10: 0.32}), (2, {8: 0.30, 10: 0.33})):
        path = tmp_path / f"s{seed}"
        path.mkdir()
        _log(path, maps)
        runs.append(bench.Run("qpic", seed, 1, path))
    assert bench.judge(runs, args) is False  # seed 2 moved 3 points between its last evaluations
    out = capsys.readouterr().out
    assert "FAIL: |diff| > 2.0" in out and "SOME CRITERION FAILS" in out
    _log(runs[1].path, {8: 0.32, 10: 0.33})
    assert bench.judge(runs, args) is True
    assert "ALL CRITERIA HOLD" in capsys.readouterr().out


def test_judge_takes_the_seed_spread_per_variant(bench, tmp_path, capsys):
    """Two variants 10 points apart, each with a tight seed spread: the std criterion holds for
    each; pooled over both it would not."""
    args = argparse.Namespace(min_map=30.0, max_diff=2.0, max_std=3.0, variants=["qpic", "hqm"])
    runs = []
    for variant, level in (("qpic", 0.70), ("hqm", 0.80)):
        for seed, jitter in ((1, 0.0), (2, 0.01)):
            path = tmp_path / f"{variant}{seed}"
            path.mkdir()
            _log(path, {12: level + jitter, 15: level + jitter})
            runs.append(bench.Run(variant, seed, 1, path))
    assert bench.judge(runs, args) is True
    out = capsys.readouterr().out
    assert "qpic, seeds at 1 thread: final mAP 70.5 +- 0.7" in out and "hqm, seeds at 1 thread: final mAP 80.5" in out
    _log(runs[3].path, {12: 0.90, 15: 0.90})  # hqm seed 2 now 10 points above seed 1
    assert bench.judge(runs, args) is False
    assert "FAIL: std > 3.0" in capsys.readouterr().out
