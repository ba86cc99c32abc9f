"""The training's last predictions, reused by ``hqm evaluate`` only when nothing that decides them differs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hqm.cli import main
from hqm.config import DatasetConfig, save_run_config
from hqm.data.datasets import dataset_meta
from hqm.engine import inference, prediction_cache
from hqm.engine.distributed import build_dist_env
from hqm.evaluation.predictions import ImagePrediction
from hqm.io import read_json

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import real_setup  # noqa: E402


def _predictions(rng: np.random.Generator) -> list[ImagePrediction]:
    return [ImagePrediction(file_name=f"img{i}.jpg", sub_boxes=rng.random((n, 4), dtype=np.float32),
                            obj_boxes=rng.random((n, 4), dtype=np.float32),
                            obj_labels=rng.integers(0, 80, n), verb_scores=rng.random((n, 5), dtype=np.float32))
            for i, n in enumerate((3, 0, 2))]


def test_round_trip_and_key_mismatch(tmp_path):
    preds, key = _predictions(np.random.default_rng(0)), {"checkpoint_sha256": "ab", "batch_size": 4}
    path = tmp_path / "predictions_last.pt"
    prediction_cache.save_predictions(path, key, preds)
    loaded = prediction_cache.load_matching(path, dict(key))
    assert [p.file_name for p in loaded] == [p.file_name for p in preds]
    for a, b in zip(loaded, preds, strict=True):
        for name in ("sub_boxes", "obj_boxes", "obj_labels", "verb_scores"):
            got, want = getattr(a, name), getattr(b, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert prediction_cache.load_matching(path, {**key, "batch_size": 8}) is None
    assert prediction_cache.load_matching(tmp_path / "missing.pt", key) is None
    assert prediction_cache.cache_path(tmp_path / "run" / "checkpoint_last.pth") == tmp_path / "run" / "predictions_last.pt"


def _evaluate(run: Path, root: Path, out: str, batch_size: int) -> dict:
    assert main(["evaluate", "--checkpoint", str(run / "checkpoint_last.pth"), "--dataset-root", str(root),
                 "--format", "hico", "--out", str(run / out), "--eval-json", json.dumps({"batch_size": batch_size}),
                 "--device", "cpu"]) == 0  # fmt: skip
    return read_json(run / out)


@pytest.mark.slow
def test_evaluate_reuses_the_trainings_predictions_with_identical_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # hqm evaluate's threads = the training's (threads_per_rank)
    root = real_setup.make_dataset(tmp_path / "synthetic_hico", num_train=8, num_test=6)
    cfg = real_setup.tiny_config(root, "qpic", epochs=1, eval_batch_size=4, keep_last_predictions=True)
    save_run_config(cfg, tmp_path / "run_config.yaml")
    run = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "run_config.yaml"), "--out", str(run), "--device", "cpu"]) == 0
    kept = run / "predictions_last.pt"
    assert kept.is_file()
    reused = _evaluate(run, root, "reused.json", batch_size=4)
    assert reused["predictions_from"] == "training"
    other_batch = _evaluate(run, root, "other.json", batch_size=3)  # another batching: predicted again
    assert other_batch["predictions_from"] == "this evaluation"
    kept.rename(tmp_path / "aside.pt")
    seen = []
    evaluate_dataset = inference.evaluate_dataset
    monkeypatch.setattr(inference, "evaluate_dataset", lambda fmt, root_, preds, *a, **k: (
        seen.append(preds), evaluate_dataset(fmt, root_, preds, *a, **k))[1])
    fresh = _evaluate(run, root, "fresh.json", batch_size=4)
    assert fresh["predictions_from"] == "this evaluation"
    assert reused["hico"] == fresh["hico"] and reused["hico"]["qpic"]["default"]["num_test_images"] == 6
    # the kept predictions equal a fresh prediction of checkpoint_last.pth, value for value
    (tmp_path / "aside.pt").rename(kept)
    data = torch.load(kept, weights_only=True)
    kept_preds = prediction_cache.load_matching(kept, data["key"])
    assert [p.file_name for p in kept_preds] == [p.file_name for p in seen[0]]
    for a, b in zip(kept_preds, seen[0], strict=True):
        assert all(np.array_equal(getattr(a, n), getattr(b, n)) for n in ("sub_boxes", "obj_boxes", "obj_labels",
                                                                          "verb_scores"))
    meta = dataset_meta(DatasetConfig(format="hico", root=str(root)))
    key = prediction_cache.context_key(run / "checkpoint_last.pth", meta.test_annotations, meta.root, 4,
                                       build_dist_env("cpu"), bf16=False)
    assert data["key"] == key
    # other weights under the same name: the key's checkpoint hash no longer matches
    saved = torch.load(run / "checkpoint_last.pth", weights_only=True)
    name = next(k for k, v in saved["model"].items() if v.is_floating_point())
    saved["model"][name] = saved["model"][name] + 1.0
    torch.save(saved, run / "checkpoint_last.pth")
    assert _evaluate(run, root, "changed.json", batch_size=4)["predictions_from"] == "this evaluation"


@pytest.mark.slow
def test_training_without_the_option_removes_a_stale_file(tmp_path):
    root = real_setup.make_dataset(tmp_path / "synthetic_hico")
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions_last.pt").write_bytes(b"stale")
    save_run_config(real_setup.tiny_config(root, "qpic", epochs=1), tmp_path / "run_config.yaml")
    assert main(["train", "--config", str(tmp_path / "run_config.yaml"), "--out", str(run), "--device", "cpu"]) == 0
    assert not (run / "predictions_last.pt").exists()
