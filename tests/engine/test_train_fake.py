"""The training loop on tiny stand-ins: artefacts, determinism, accumulation, DDP, kill + resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import hqm.engine.train as engine_train
from hqm.engine.distributed import DistEnv
from hqm.io import read_json

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import fakes  # noqa: E402
import procs  # noqa: E402
from procs import weights  # noqa: E402

CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def run_here(run_dir, monkeypatch, **train_kw):
    monkeypatch.setattr(engine_train, "evaluate_model", fakes.fake_evaluate)
    return engine_train.run_training(fakes.fake_config(**train_kw), run_dir, CPU, fakes.fake_components())


def run_process(run_dir, nproc=1, sleep=0.0, wait=True, **train_kw):
    script = [str(HERE / "fake_run.py"), str(run_dir), json.dumps(train_kw)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *script]
    else:
        cmd = [sys.executable, *script]
    return procs.start(cmd, {"HQM_TEST_STEP_SLEEP": str(sleep)}, wait=wait)


def test_run_writes_artefacts_and_same_seed_gives_identical_weights(tmp_path, monkeypatch):
    metrics = run_here(tmp_path / "a", monkeypatch)
    run_here(tmp_path / "b", monkeypatch)
    for name in ("checkpoint.pth", "metrics.json", "log.jsonl", "config.yaml", "state/last.pth"):
        assert (tmp_path / "a" / name).is_file(), name
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = torch.load(tmp_path / "a" / "checkpoint.pth", weights_only=True)
    assert set(saved) == {"model", "config", "epoch", "hqm_version"} and saved["epoch"] == 2
    assert read_json(tmp_path / "a" / "metrics.json") == metrics
    assert metrics["epoch"] == 2 and metrics["selected_on_test"] is False and "best" not in metrics
    assert metrics["hico"]["qpic"]["default"]["num_images"] == 5
    lines = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines[0]["lr"] == pytest.approx(1e-2) and lines[1]["lr"] == pytest.approx(1e-3)  # StepLR
    assert "test" not in lines[0] and lines[1]["test"]["qpic"]["default"]["num_images"] == 5
    assert {"train_loss", "train_loss_obj_ce", "images_per_s", "epoch_time"} <= set(lines[0])


def test_select_best_is_labelled_selected_on_test(tmp_path, monkeypatch):
    metrics = run_here(tmp_path, monkeypatch, epochs=3, eval_every_epochs=1, select_best=True)
    history = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    scores = [h["test"]["qpic"]["default"]["mAP"] for h in history]
    assert metrics["best"]["selected_on_test"] is True
    assert metrics["best"]["epoch"] == 1 + scores.index(max(scores))
    assert metrics["hico"]["qpic"]["default"]["mAP"] == scores[-1]


@pytest.mark.slow
def test_two_process_kill_9_and_restart_ends_identical(tmp_path):
    """Per-rank RNG states (dropout) and loss sums survive kill -9 of a 2-process gloo run."""
    nproc = 2
    kw = dict(epochs=3, checkpoint_every_iters=1, dropout=0.3)  # dropout: RNG state must resume too
    run_process(tmp_path / "whole", nproc=nproc, **kw)
    victim = tmp_path / "killed"
    proc = run_process(victim, nproc=nproc, sleep=0.15, wait=False, **kw)
    procs.kill_mid_epoch(proc, victim, timeout=120)
    run_process(victim, nproc=nproc, **kw)
    procs.assert_same_run(victim, tmp_path / "whole")
