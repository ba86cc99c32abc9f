"""The training loop on tiny stand-ins: artefacts, determinism, selection, DDP, kill + resume."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

import hqm.engine.train as engine_train
from hqm.engine.distributed import DistEnv
from hqm.io import read_json

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import fakes  # noqa: E402
import procs  # noqa: E402
from procs import weights  # noqa: E402

CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def run_here(run_dir, monkeypatch, restart=False, **train_kw):
    monkeypatch.setattr(engine_train, "evaluate_model", fakes.fake_evaluate)
    return engine_train.run_training(fakes.fake_config(**train_kw), run_dir, CPU, fakes.fake_components(),
                                     restart=restart)


def run_process(run_dir, nproc=1, sleep=0.0, wait=True, **train_kw):
    script = [str(HERE / "fake_run.py"), str(run_dir), json.dumps(train_kw)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *script]
    else:
        cmd = [sys.executable, *script]
    return procs.start(cmd, {"HQM_TEST_STEP_SLEEP": str(sleep)}, wait=wait)


def read_log(run_dir):
    return [json.loads(x) for x in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def test_run_writes_artefacts_and_same_seed_gives_identical_weights(tmp_path, monkeypatch):
    summary = run_here(tmp_path / "a", monkeypatch)
    run_here(tmp_path / "b", monkeypatch)
    for name in ("checkpoint_last.pth", "train_summary.json", "log.jsonl", "curves.csv", "config.yaml",
                 "state/last.pth"):
        assert (tmp_path / "a" / name).is_file(), name
    assert not (tmp_path / "a" / "checkpoint_best.pth").exists()  # select_best is off
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved = torch.load(tmp_path / "a" / "checkpoint_last.pth", weights_only=True)
    assert set(saved) == {"model", "config", "epoch", "hqm_version"} and saved["epoch"] == 2
    assert read_json(tmp_path / "a" / "train_summary.json") == json.loads(json.dumps(summary))
    sel = summary["selection"]
    assert sel["metric"] == "hico.qpic.default.mAP" and sel["last_epoch"] == 2
    assert sel["best_epoch"] is None and sel["selected_on_test"] is False
    lines = read_log(tmp_path / "a")
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines[0]["lr"] == pytest.approx(1e-2) and lines[1]["lr"] == pytest.approx(1e-3)  # StepLR
    assert "test" not in lines[0] and lines[0]["selection_map"] is None  # only the last epoch evaluated
    assert lines[1]["test"]["qpic"]["default"]["num_images"] == 5
    assert lines[1]["selection_map"] == lines[1]["test"]["qpic"]["default"]["mAP"] == sel["values"]["2"]
    assert {"train_loss", "train_loss_obj_ce", "images_per_s", "epoch_time"} <= set(lines[0])


def test_curves_csv_is_wide_with_percent_map(tmp_path, monkeypatch):
    run_here(tmp_path, monkeypatch, epochs=3, eval_every_epochs=2)
    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    log = read_log(tmp_path)
    assert list(rows[0]) == ["epoch", "lr", "loss", "loss_obj_ce", "loss_sub_bbox", "loss_verb", "map"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for row, line in zip(rows, log):
        assert float(row["loss"]) == line["train_loss"] and float(row["lr"]) == line["lr"]
        assert float(row["loss_verb"]) == line["train_loss_verb"]
    assert rows[0]["map"] == ""  # epoch 1 not evaluated (every 2 epochs, and the last)
    assert float(rows[1]["map"]) == pytest.approx(100 * log[1]["selection_map"])
    assert float(rows[2]["map"]) == pytest.approx(100 * log[2]["selection_map"])


def test_select_best_keeps_the_best_epochs_weights(tmp_path, monkeypatch):
    summary = run_here(tmp_path / "run", monkeypatch, epochs=3, eval_cadence="qpic", select_best=True)
    scores = [h["selection_map"] for h in read_log(tmp_path / "run")]
    sel = summary["selection"]
    best = 1 + scores.index(max(scores))
    assert sel["best_epoch"] == best and sel["selected_on_test"] is True and sel["best_value"] == max(scores)
    saved = torch.load(tmp_path / "run" / "checkpoint_best.pth", weights_only=True)
    assert saved["epoch"] == best
    # the same recipe stopped after the best epoch ends with exactly those weights
    run_here(tmp_path / "short", monkeypatch, epochs=best, eval_cadence="qpic")
    short = weights(tmp_path / "short")
    assert all(torch.equal(saved["model"][k], short[k]) for k in short)


def test_hqm_cadence_decides_the_evaluated_epochs(tmp_path, monkeypatch):
    run_here(tmp_path, monkeypatch, epochs=7, eval_cadence="hqm", lr_drop=100)
    evaluated = [h["epoch"] for h in read_log(tmp_path) if h["selection_map"] is not None]
    assert evaluated == [1, 6, 7]  # 0-based epochs 0 and 5 (epoch % 5 == 0), and the last


def test_resume_under_a_changed_config_is_an_error_unless_restarted(tmp_path, monkeypatch):
    from hqm.errors import HqmError

    run_here(tmp_path, monkeypatch)
    before = (tmp_path / "log.jsonl").read_text()
    with pytest.raises(HqmError, match=r"differs in train\.epochs, train\.lr\b.*--restart"):
        run_here(tmp_path, monkeypatch, lr=2e-2, epochs=3)
    assert (tmp_path / "log.jsonl").read_text() == before  # nothing truncated
    run_here(tmp_path, monkeypatch, threads_per_rank=2)  # a neutral key: resumes (already finished)
    assert (tmp_path / "log.jsonl").read_text() == before
    run_here(tmp_path, monkeypatch, restart=True, lr=2e-2, epochs=3)
    lines = read_log(tmp_path)
    assert [x["epoch"] for x in lines] == [1, 2, 3] and lines[0]["lr"] == pytest.approx(2e-2)


def test_progress_lines_and_provenance(tmp_path, monkeypatch, capsys):
    summary = run_here(tmp_path, monkeypatch, log_every_iters=2)
    err = capsys.readouterr().err.splitlines()
    steps = [x for x in err if "step " in x]
    assert len(steps) == 4 and "epoch 1/2 step 2/4 loss" in steps[0] and "epoch 2/2 step 4/4" in steps[-1]
    done = [x for x in err if " done: " in x]
    assert len(done) == 2 and "map " not in done[0] and "map " in done[1]
    prov = yaml.safe_load((tmp_path / "config.yaml").read_text())["provenance"]
    assert prov["world_size"] == 1 and prov["nodes"] == 1 and prov["seed"] == 42 and prov["hostname"]
    assert prov["versions"]["torch"] == torch.__version__ and set(prov["versions"]) >= {"cuda", "cudnn", "nccl"}
    assert len(prov["git"]["commit"]) == 40 and isinstance(prov["git"]["dirty"], bool)
    assert {"gpu_model", "gpu_count"} <= set(prov)
    assert summary["wall_time_s"] > 0 and summary["provenance"]["wall_time_s"] == summary["wall_time_s"]


def test_zero_epochs_never_succeed(tmp_path, monkeypatch):
    from hqm.cli import main
    from hqm.config import save_run_config
    from hqm.errors import HqmError

    with pytest.raises(HqmError, match="train.epochs: 0"):
        run_here(tmp_path / "run", monkeypatch, epochs=0)
    cfg = fakes.fake_config(epochs=-1)
    save_run_config(cfg, tmp_path / "cfg.yaml")
    assert main(["train", "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "cli")]) == 2
    assert not (tmp_path / "cli").exists()


@pytest.mark.slow
def test_two_process_kill_9_and_restart_ends_identical(tmp_path):
    """Per-rank RNG states (dropout) and loss sums survive kill -9 of a 2-process gloo run."""
    nproc = 2
    kw = dict(epochs=3, checkpoint_every_iters=1, dropout=0.3, eval_cadence="qpic", select_best=True)
    run_process(tmp_path / "whole", nproc=nproc, **kw)
    victim = tmp_path / "killed"
    proc = run_process(victim, nproc=nproc, sleep=0.15, wait=False, **kw)
    procs.kill_mid_epoch(proc, victim, timeout=120)
    run_process(victim, nproc=nproc, **kw)
    procs.assert_same_run(victim, tmp_path / "whole")
    wa, wb = weights(victim, "checkpoint_best.pth"), weights(tmp_path / "whole", "checkpoint_best.pth")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_training_never_reads_the_evaluation_section(tmp_path, monkeypatch):
    import dataclasses

    from hqm.config import RunConfig

    # a run config cannot even hold the evaluation section (hqm evaluate takes it)
    assert "evaluation" not in {f.name for f in dataclasses.fields(RunConfig)}
    seen = []

    def spy(model, dataset, collate_fn, meta, eval_cfg, *args, **kwargs):
        seen.append(eval_cfg)
        return fakes.fake_evaluate(model, dataset, collate_fn, meta, eval_cfg, *args, **kwargs)

    monkeypatch.setattr(engine_train, "evaluate_model", spy)
    cfg = fakes.fake_config(eval_batch_size=3)
    engine_train.run_training(cfg, tmp_path, CPU, fakes.fake_components())
    assert [(e.hico_protocols, e.hico_settings, e.batch_size) for e in seen] == [(["qpic"], ["default"], 3)]
    assert "evaluation" not in yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert "evaluation" not in torch.load(tmp_path / "checkpoint_last.pth", weights_only=True)["config"]
