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

from hqm.engine.distributed import DistEnv, all_gather_objects, broadcast_object
from hqm.errors import HqmError


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
    from hqm.evaluation.predictions import ImagePrediction
    from hqm.models.postprocess import postprocess_hoi

    indices = shard_indices(len(dataset), env)
    loader = DataLoader(
        Subset(dataset, indices), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=collate_fn,
    )  # fmt: skip
    was_training = model.training
    model.eval()
    out: list[tuple[int, Any]] = []
    try:
        for images, mask, targets in loader:
            with autocast_context(env.device, bf16):
                outputs = model(images.to(env.device), mask.to(env.device))
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


def evaluate_model(model, dataset, collate_fn, meta, eval_cfg, env: DistEnv, num_workers: int = 0, bf16: bool = False) -> dict:
    """Metrics of ``model`` on ``dataset`` (same dict on every rank)."""
    from hqm.evaluation.run import evaluate_dataset

    local = predict_shard(model, dataset, collate_fn, env, eval_cfg.batch_size, num_workers, bf16)
    predictions = gather_predictions(local, env)
    metrics = None
    if env.is_main:
        metrics = evaluate_dataset(meta.format, meta.root, predictions, eval_cfg, per_category=False)
    return broadcast_object(metrics, env)


def evaluate_checkpoint(
    checkpoint: str,
    dataset_root: str,
    fmt: str,
    env: DistEnv,
    released: str | None = None,
    vcoco_pickle: str | None = None,
    unsafe_pickle: bool = False,
) -> dict:
    """Metrics of a checkpoint (ours, or a released QPIC / HQM one) on a dataset's test split.

    Our checkpoints carry their run config (model size, augmentation, evaluation options); a
    released one is the paper's R50 model with default settings. Inference is the QPIC path for
    every method (method.md §8.6), so released HQM weights load into a plain QPIC detector.
    """
    from hqm.config import DatasetConfig, EvalConfig, RunConfig, from_dict
    from hqm.data.datasets import build_dataset, collate, dataset_meta
    from hqm.engine.checkpoint import load_checkpoint, load_weights
    from hqm.models.build import build_detector

    if released is None:
        saved = load_checkpoint(checkpoint, unsafe_pickle)
        if not isinstance(saved.get("config"), dict):
            raise HqmError(f"{checkpoint}: no 'config' entry; for released QPIC/HQM files pass --released")
        cfg = from_dict(RunConfig, saved["config"], f"{checkpoint}: config")
        model_cfg, method, hard = cfg.model, cfg.method, cfg.hard_queries
        augment, eval_cfg = cfg.augment, cfg.evaluation
    else:
        from hqm.config import AugmentConfig, HardQueryConfig, ModelConfig

        model_cfg, method, hard = ModelConfig(), "qpic", HardQueryConfig()
        augment, eval_cfg = AugmentConfig(), EvalConfig()
    ds = DatasetConfig(format=fmt, root=str(dataset_root))
    meta = dataset_meta(ds)
    model_cfg = from_dict(type(model_cfg), {**_plain(model_cfg), "init_weights": None, "backbone_weights": None})
    model = build_detector(model_cfg, method, hard, meta.num_obj_classes, meta.num_verb_classes)
    load_weights(model, checkpoint, unsafe_pickle=unsafe_pickle)
    model.to(env.device)
    dataset = build_dataset(ds, "test", augment)
    local = predict_shard(model, dataset, collate, env, eval_cfg.batch_size)
    predictions = gather_predictions(local, env)
    metrics = None
    if env.is_main:
        from hqm.evaluation.run import evaluate_dataset

        result = evaluate_dataset(meta.format, meta.root, predictions, eval_cfg, per_category=False)
        metrics = {"checkpoint": str(checkpoint), "released": released, "dataset_root": str(dataset_root),
                   "format": fmt, "num_images": len(predictions)}
        from hqm.engine.metrics_io import format_block

        metrics.update(format_block(fmt, result))
        if vcoco_pickle:
            from hqm.evaluation.vcoco import write_official_pickle

            write_official_pickle(vcoco_pickle, predictions, meta.correct_mat)
    return broadcast_object(metrics, env)


def _plain(obj) -> dict:
    from hqm.config import to_dict

    return to_dict(obj)
