"""End to end on the real synthetic dataset, datasets, detector, criterion and evaluators."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from hqm.config import save_run_config
from hqm.engine.distributed import DistEnv
from hqm.io import read_json

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import procs  # noqa: E402
import real_setup  # noqa: E402
from procs import weights  # noqa: E402

CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return real_setup.make_dataset(tmp_path_factory.mktemp("data") / "synthetic_hico")


def hqm_cli(*args, wait=True):
    return procs.start([sys.executable, "-m", "hqm.cli", *map(str, args)], wait=wait, timeout=300)


EVAL_ALL = '{"hico_protocols": ["qpic", "official"], "hico_settings": ["default", "known_object"], "batch_size": 2}'


@pytest.mark.slow
def test_two_process_gloo_training_then_evaluate_stage(root, tmp_path):
    """train (2 gloo ranks, selection every epoch) -> evaluate last and best in one process: the
    stage's QPIC number equals the in-training selection number (sharding lost or repeated nothing;
    with train.ema_decay both ranks score, and the checkpoints hold, the same averaged weights)."""
    cfg_path = tmp_path / "run_config.yaml"
    save_run_config(real_setup.tiny_config(root, "hqm", epochs=2, eval_cadence="qpic", select_best=True,
                                           eval_batch_size=2, ema_decay=0.8), cfg_path)
    run = tmp_path / "run"
    hqm_cli("train", "--config", cfg_path, "--out", run, "--nproc", 2, "--device", "cpu")
    summary = read_json(run / "train_summary.json")
    assert (summary["method"], summary["provenance"]["world_size"]) == ("hqm", 2)
    sel = summary["selection"]
    assert set(sel["values"]) == {"1", "2"} and sel["best_epoch"] in (1, 2) and sel["last_epoch"] == 2
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert {"train_loss", "train_gbs_loss_obj_ce", "train_amm_loss_obj_ce"} <= set(log[0])  # AJL: both streams
    assert "official" not in log[0]["test"]  # training computes the selection protocol only
    for which, epoch in (("last", 2), ("best", sel["best_epoch"])):
        hqm_cli("evaluate", "--checkpoint", run / f"checkpoint_{which}.pth", "--dataset-root", root,
                "--format", "hico", "--out", run / f"metrics_{which}.json", "--eval-json", EVAL_ALL,
                "--headline-out", run / f"headline_{which}.json", "--device", "cpu")
        metrics = read_json(run / f"metrics_{which}.json")
        assert (metrics["checkpoint"], metrics["epoch"], metrics["selected_on_test"]) == (which, epoch, which == "best")
        assert (metrics["dataset"], metrics["variant"], metrics["seed"], metrics["num_images"]) == \
            ("synthetic_hico", "hqm", 42, 4)
        assert metrics["provenance"]["world_size"] == 1 and metrics["evaluation"]["batch_size"] == 2
        block = metrics["hico"]
        assert set(block) == {"qpic", "official"} and set(block["official"]) == {"default", "known_object"}
        assert block["qpic"]["default"]["mAP"] == pytest.approx(sel["values"][str(epoch)], abs=1e-6)
        head = read_json(run / f"headline_{which}.json")
        assert head["checkpoint"] == which
        assert head["hico_default_full"] == pytest.approx(100 * block["official"]["default"]["mAP"])
        assert head["hico_known_object_rare"] == pytest.approx(100 * block["official"]["known_object"]["mAP rare"])
        assert head["hico_qpic_full"] == pytest.approx(100 * sel["values"][str(epoch)], abs=1e-4)


@pytest.mark.slow
def test_kill_9_and_restart_gives_identical_metrics(root, tmp_path):
    cfg_path = tmp_path / "config.yaml"  # HQM: the GBS/AMM generator must resume too
    save_run_config(real_setup.tiny_config(root, "hqm", epochs=3, checkpoint_every_iters=1), cfg_path)
    hqm_cli("train", "--config", cfg_path, "--out", tmp_path / "whole", "--device", "cpu")
    victim = tmp_path / "killed"
    proc = hqm_cli("train", "--config", cfg_path, "--out", victim, "--device", "cpu", wait=False)
    procs.kill_mid_epoch(proc, victim)
    hqm_cli("train", "--config", cfg_path, "--out", victim, "--device", "cpu")
    procs.assert_same_run(victim, tmp_path / "whole")


@pytest.mark.slow
def test_evaluating_never_changes_the_trained_weights(root, tmp_path):
    """params.yaml picks the demo's evaluation epochs for time alone: an HQM run evaluated after every
    epoch trains bit-identically to one evaluated only at the end (no RNG draw, no norm statistics)."""
    runs = {}
    for every in (0, 1):
        cfg_path = tmp_path / f"every{every}.yaml"
        cfg = real_setup.tiny_config(root, "hqm", epochs=3, eval_every_epochs=every, eval_batch_size=2)
        # the demo's trainable BatchNorm: an evaluation in train mode would move its statistics
        save_run_config(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone_norm="batch")), cfg_path)
        runs[every] = tmp_path / f"every{every}"
        hqm_cli("train", "--config", cfg_path, "--out", runs[every], "--device", "cpu")
    logs = {every: [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()] for every, run in runs.items()}
    assert [x.get("test") is not None for x in logs[1]] == [True, True, True]
    assert [x.get("test") is not None for x in logs[0]] == [False, False, True]
    assert [x["train_loss"] for x in logs[0]] == [x["train_loss"] for x in logs[1]]
    assert logs[0][-1]["test"] == logs[1][-1]["test"]
    last, every_epoch = weights(runs[0]), weights(runs[1])
    assert last.keys() == every_epoch.keys() and all(torch.equal(last[k], every_epoch[k]) for k in last)


@pytest.mark.slow
def test_gradient_accumulation_matches_big_batch_and_ddp(root, tmp_path):
    """1 process x batch 4 == 1 process x batch 2 x 2 accumulation == 2 gloo processes x batch 2."""
    real_setup.uniform_run(0, 1, str(root), str(tmp_path / "big"), 4, 0)
    real_setup.uniform_run(0, 1, str(root), str(tmp_path / "accum"), 2, 0)
    port = 29500 + os.getpid() % 2000
    torch.multiprocessing.spawn(real_setup.uniform_run, args=(2, str(root), str(tmp_path / "ddp"), 2, port),
                                nprocs=2, join=True)
    big = weights(tmp_path / "big")
    for other in ("accum", "ddp"):
        w = weights(tmp_path / other)
        assert any(not torch.equal(w[k], real_setup.initial_weights(root)[k]) for k in w)  # it trained
        for k in big:
            torch.testing.assert_close(w[k], big[k], rtol=1e-4, atol=1e-6, msg=f"{other}: {k}")
