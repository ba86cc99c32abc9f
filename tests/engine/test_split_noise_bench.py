"""bench/split_noise.py: one large split drawn from the run's own dataset settings, scored per slice."""

import json

import pytest
import torch
import yaml
from real_setup import make_dataset, tiny_config

from bench_scripts import load_bench
from hqm.config_checks import to_dict


@pytest.fixture(scope="module")
def bench():
    return load_bench("split_noise")


def tiny_run(tmp_path):
    """(dataset root, run folder with run_config.yaml, the tiny model's initial weights)."""
    from hqm.engine.train import build_components

    root = make_dataset(tmp_path / "data", num_train=8, num_test=4)
    cfg = tiny_config(root)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    torch.manual_seed(0)
    return root, run, build_components(cfg).model.state_dict()


def test_slices_of_a_larger_split_from_the_runs_settings(bench, tmp_path, capsys):
    root, run, weights = tiny_run(tmp_path)
    torch.save({"model": weights}, run / "a.pth")
    work = tmp_path / "work"
    bench.main(["--run", str(run), "--checkpoints", str(run / "a.pth"), str(run / "a.pth"),
                "--num-test", "8", "--sizes", "4", "8", "--work", str(work)])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    rows = {(line.split()[0], line.split()[1]): line.split()[2:] for line in lines}
    assert len(rows[("n=4", "a.pth")]) == 2 + 2  # two slices, then "sd x.y"
    assert len(rows[("n=8", "a.pth")]) == 1
    # the same weights twice: every slice's difference is exactly zero
    assert [float(v) for v in rows[("n=4", "second")][2:4]] == [0.0, 0.0]
    assert all(0.0 <= float(v) <= 100.0 for v in rows[("n=4", "a.pth")][:2])
    # the large split repeats the run's training split and starts with its test split
    large = work / "synthetic_hico_8" / "annotations"
    original = json.loads((root / "annotations" / "test_hico.json").read_text())
    assert json.loads((large / "test_hico.json").read_text())[:4] == original
    assert (large / "trainval_hico.json").read_text() == (root / "annotations" / "trainval_hico.json").read_text()
    assert json.loads((work / "slices" / "4_1" / "annotations" / "test_hico.json").read_text()) == \
        json.loads((large / "test_hico.json").read_text())[4:]


def test_a_training_state_is_scored_by_its_moving_average(bench, tmp_path, capsys):
    """state/last.pth of a train.ema_decay run: the average (what training scores), not the raw weights."""
    _, run, weights = tiny_run(tmp_path)
    raw = {k: v + 0.5 if v.is_floating_point() else v for k, v in weights.items()}  # not even finite boxes
    state = {"model": raw, "average": {"decay": 0.9, "updates": 3, "module": weights}}
    assert bench.scored_weights(state) is weights
    assert bench.scored_weights({"model": raw, "average": None}) is raw  # ema_decay 0
    torch.save({"model": weights}, run / "checkpoint.pth")
    torch.save(state, run / "state.pth")
    bench.main(["--run", str(run), "--checkpoints", str(run / "checkpoint.pth"), str(run / "state.pth"),
                "--num-test", "8", "--sizes", "8", "--work", str(tmp_path / "work")])  # fmt: skip
    rows = {line.split()[1]: line.split()[2:] for line in capsys.readouterr().out.splitlines()}
    assert float(rows["second"][2]) == 0.0


def test_sizes_must_divide_the_split(bench, tmp_path):
    with pytest.raises(SystemExit):
        bench.parse_args(["--run", str(tmp_path), "--checkpoints", "a.pth", "--num-test", "8", "--sizes", "3"])
