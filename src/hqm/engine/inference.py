"""Inference on the test split, sharded exactly across ranks, and evaluation on rank 0.

Rank r predicts images ``r, r + W, r + 2W, ...`` of the split: every image exactly once, nothing
padded (the published code pads the last shard with repeated images). Predictions travel to rank 0
with their image indices, are put back in split order and handed to ``evaluate_dataset``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hqm.config import (
    AugmentConfig,
    DatasetConfig,
    EvalConfig,
    HardQueryConfig,
    ModelConfig,
    RunConfig,
    from_dict,
    to_dict,
)  # fmt: skip
from hqm.data.datasets import build_dataset, collate, dataset_meta
from hqm.engine import prediction_cache
from hqm.engine.checkpoint import load_checkpoint, load_weights
from hqm.engine.distributed import DistEnv, all_gather_objects, broadcast_object
from hqm.engine.metrics_io import checkpoint_label, format_block
from hqm.engine.selection import evaluate_predictions
from hqm.errors import HqmError
from hqm.evaluation.predictions import ImagePrediction
from hqm.evaluation.run import evaluate_dataset
from hqm.evaluation.vcoco import write_official_pickle
from hqm.models.build import build_detector
from hqm.models.postprocess import postprocess_hoi


def shard_indices(num_items: int, env: DistEnv) -> list[int]:
    """This rank's share of ``range(num_items)``; shards are disjoint and cover everything."""
    return list(range(env.rank, num_items, env.world_size))


def autocast_context(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA only; a no-op elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_float(obj: Any) -> Any:
    """Recursively cast floating tensors to fp32 (losses and post-processing run in fp32)."""
    if torch.is_tensor(obj):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: to_float(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_float(v) for v in obj)
    return obj


@torch.no_grad()
def predict_shard(
    model: torch.nn.Module,
    dataset: Dataset,
    collate_fn,
    env: DistEnv,
    batch_size: int,
    num_workers: int = 0,
    bf16: bool = False,
) -> list[tuple[int, Any]]:
    """(image index, ImagePrediction) for this rank's shard of ``dataset``."""
    indices = shard_indices(len(dataset), env)
    loader = DataLoader(
        Subset(dataset, indices), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=collate_fn,
    )  # fmt: skip
    # NHWC convolutions on the CPU: the demo backbone predicts 1.4-1.7x faster (docs/demo.md, "The
    # test split"); the features are made contiguous again before the transformer
    layout = torch.channels_last if env.device.type == "cpu" else torch.contiguous_format
    was_training = model.training
    model.eval()
    out: list[tuple[int, Any]] = []
    try:
        for images, mask, targets in loader:
            images = images.to(env.device).contiguous(memory_format=layout)
            with autocast_context(env.device, bf16):
                outputs = model(images, mask.to(env.device))
            outputs = to_float({k: v for k, v in outputs.items() if k != "aux_outputs"})
            orig_sizes = torch.stack([t["orig_size"] for t in targets]).to(env.device)
            for target, pred in zip(targets, postprocess_hoi(outputs, orig_sizes)):
                item = ImagePrediction(
                    file_name=target["file_name"],
                    sub_boxes=pred["sub_boxes"],
                    obj_boxes=pred["obj_boxes"],
                    obj_labels=pred["obj_labels"],
                    verb_scores=pred["verb_scores"],
                )
                out.append((int(target["image_index"]), item))
    finally:
        model.train(was_training)
    return out


def gather_predictions(local: list[tuple[int, Any]], env: DistEnv) -> list[Any] | None:
    """All ranks' predictions in split order on rank 0 (None elsewhere)."""
    shards = all_gather_objects(local, env)
    if not env.is_main:
        return None
    merged = sorted((pair for shard in shards for pair in shard), key=lambda p: p[0])
    seen = [i for i, _ in merged]
    if len(set(seen)) != len(seen):
        raise RuntimeError("evaluation shards overlap: an image was predicted twice")
    return [pred for _, pred in merged]


def evaluate_model(model, dataset, collate_fn, meta, eval_cfg, env: DistEnv, num_workers: int = 0, bf16: bool = False,
                   on_predictions=None) -> dict:
    """The in-training selection block of ``model`` on ``dataset`` (same dict on every rank);
    ``on_predictions`` (rank 0) receives the split's predictions, as ``hqm evaluate`` would make them."""
    local = predict_shard(model, dataset, collate_fn, env, eval_cfg.batch_size, num_workers, bf16)
    predictions = gather_predictions(local, env)
    metrics = None
    if env.is_main:
        if on_predictions is not None:
            on_predictions(predictions)
        metrics = evaluate_predictions(meta.format, meta.root, predictions, eval_cfg)
    return broadcast_object(metrics, env)


def _load_for_evaluation(checkpoint: str, released: str | None, unsafe_pickle: bool = False):
    """(model config, method, hard-query config, augment config, run description) of a checkpoint."""
    if released is not None:  # the paper's R50 model with default settings
        run = {"dataset": None, "variant": released, "method": released, "seed": None, "epoch": None}
        return ModelConfig(), "qpic", HardQueryConfig(), AugmentConfig(), run
    saved = load_checkpoint(checkpoint, unsafe_pickle)
    if not isinstance(saved.get("config"), dict):
        raise HqmError(f"{checkpoint}: no 'config' entry; for released QPIC/HQM files pass --released")
    config = dict(saved["config"])
    config.pop("evaluation", None)  # evaluation settings come from the command, never the run
    cfg = from_dict(RunConfig, config, f"{checkpoint}: config")
    model_cfg = from_dict(type(cfg.model), {**to_dict(cfg.model), "init_weights": None, "backbone_weights": None})
    run = {"dataset": cfg.dataset_name, "variant": cfg.variant, "method": cfg.method, "seed": cfg.seed,
           "epoch": saved.get("epoch")}
    return model_cfg, cfg.method, cfg.hard_queries, cfg.augment, run


def evaluate_checkpoint(
    checkpoint: str,
    dataset_root: str,
    fmt: str,
    env: DistEnv,
    eval_cfg=None,
    released: str | None = None,
    vcoco_pickle: str | None = None,
    unsafe_pickle: bool = False,
) -> dict | None:
    """Every protocol ``eval_cfg`` (the ``evaluation:`` section) asks for, on a checkpoint (ours, or a
    released QPIC / HQM one) and a dataset's test split; the metrics dict on rank 0, None elsewhere.

    Inference is the QPIC path for every method (method.md §8.6), so released HQM weights load into
    a plain QPIC detector. ``checkpoint`` says ``last`` or ``best`` (from the file name); a best
    checkpoint was selected on the test split and is labelled so.
    """
    eval_cfg = eval_cfg or EvalConfig()
    model_cfg, method, hard, augment, run = _load_for_evaluation(checkpoint, released, unsafe_pickle)
    ds = DatasetConfig(format=fmt, root=str(dataset_root))
    meta = dataset_meta(ds)
    predictions, source = None, "this evaluation"
    if released is None:  # the training's own predictions of these weights, when nothing differs
        key = prediction_cache.context_key(checkpoint, meta.test_annotations, meta.root, eval_cfg.batch_size,
                                           env, bf16=False)
        predictions = prediction_cache.load_matching(prediction_cache.cache_path(checkpoint), key)
        source = "training" if predictions is not None else source
    if predictions is None:
        model = build_detector(model_cfg, method, hard, meta.num_obj_classes, meta.num_verb_classes)
        load_weights(model, checkpoint, unsafe_pickle=unsafe_pickle)
        model.to(env.device)
        dataset = build_dataset(ds, "test", augment)
        predictions = gather_predictions(predict_shard(model, dataset, collate, env, eval_cfg.batch_size), env)
    if not env.is_main:
        return None
    label = "released" if released else checkpoint_label(checkpoint)
    metrics = {**run, "format": fmt, "selected_on_test": label == "best", "checkpoint": label,
               "checkpoint_path": str(checkpoint), "released": released, "dataset_root": str(dataset_root),
               "num_images": len(predictions), "predictions_from": source}  # fmt: skip
    metrics.update(format_block(fmt, evaluate_dataset(meta.format, meta.root, predictions, eval_cfg, per_category=True)))
    if vcoco_pickle:
        write_official_pickle(vcoco_pickle, predictions, meta.correct_mat)
    return metrics
