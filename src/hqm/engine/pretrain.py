"""``hqm pretrain-detr``'s loop: DETR on one dataset's training split, saved as DETR saves it.

Where the paper starts every run from DETR's COCO weights, the CPU demo cannot download them; it
trains a DETR of the demo's own size on the synthetic training images instead, then converts it
exactly as the released file (``hqm convert-weights``). Every variant and seed starts from the same
file, as every paper run starts from the same DETR. One process, deterministic for a seed and a
thread count (docs/demo.md).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hqm.config import PretrainConfig, PretrainSettings
from hqm.data.datasets import DetectionDataset, collate, dataset_meta
from hqm.data.transforms import build_test_transform, build_train_transform
from hqm.engine.progress import Progress, epoch_line
from hqm.engine.schedules import build_lr_scheduler
from hqm.engine.train import build_optimizer, seed_everything
from hqm.errors import HqmError
from hqm.models.build import build_detr
from hqm.models.detr import COCO_NUM_CLASSES, DETR, DetrCriterion


def build_detr_criterion(cfg: PretrainConfig) -> DetrCriterion:
    return DetrCriterion(COCO_NUM_CLASSES, cfg.cost_class, cfg.cost_bbox, cfg.cost_giou, cfg.ce_loss_coef,
                         cfg.bbox_loss_coef, cfg.giou_loss_coef, cfg.eos_coef)


def detection_loader(settings: PretrainSettings) -> DataLoader:
    """The training split of ``pretrain.dataset`` with DETR targets, shuffled from ``pretrain.seed``."""
    cfg, augment = settings.pretrain, settings.augment
    meta = dataset_meta(settings.dataset)
    deterministic = augment.policy == "none"
    transform = build_test_transform(augment) if deterministic else build_train_transform(augment)
    data = DetectionDataset(meta, "train", transform, max_boxes=augment.max_boxes, cache=deterministic)
    if not len(data):
        raise HqmError(f"{meta.train_annotations}: the training split is empty")
    generator = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=generator, collate_fn=collate)


def train_epoch(model: DETR, criterion: DetrCriterion, loader: DataLoader, optimizer, scheduler,
                cfg: PretrainConfig, progress: Progress) -> dict[str, float]:
    """One pass; -> the epoch's mean of the weighted loss and of every unweighted term."""
    model.train()
    sums: dict[str, float] = {}
    start, images = time.perf_counter(), 0
    device = next(model.parameters()).device
    for batch_images, mask, targets in loader:
        targets = [{"labels": t["labels"].to(device), "boxes": t["boxes"].to(device)} for t in targets]
        total, losses = criterion(model(batch_images.to(device), mask.to(device)), targets)
        loss = total.item()
        if not math.isfinite(loss):
            raise HqmError(f"pretrain-detr: the loss is {loss} (lower pretrain.lr?)")
        optimizer.zero_grad()
        total.backward()
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_max_norm)
        optimizer.step()
        scheduler.step()
        images += len(targets)
        for key, value in {"loss": total, **losses}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        progress.update(loss, images / max(time.perf_counter() - start, 1e-9))
    progress.close()
    return {key: value / len(loader) for key, value in sums.items()}


def pretrain_detr(settings: PretrainSettings, show_progress: bool = True,
                  device: str = "cpu") -> tuple[dict, list[dict]]:
    """Train on ``device``; -> (DETR state dict on the CPU, per-epoch records with ``epoch``, ``lr``,
    ``loss`` and the terms)."""
    cfg = settings.pretrain
    if cfg.epochs < 1:
        raise HqmError(f"pretrain.epochs: {cfg.epochs}; pretraining needs at least one epoch")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    model = build_detr(settings.model).to(device)
    criterion = build_detr_criterion(cfg).to(device)
    loader = detection_loader(settings)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_lr_scheduler(optimizer, cfg, len(loader))
    records = []
    for epoch in range(cfg.epochs):
        lr = optimizer.param_groups[0]["lr"]
        progress = Progress(epoch, cfg.epochs, len(loader), 0, 50, show_progress)
        start = time.perf_counter()
        means = train_epoch(model, criterion, loader, optimizer, scheduler, cfg, progress)
        record = {"epoch": epoch + 1, "lr": lr, **means, "epoch_time": time.perf_counter() - start}
        records.append(record)
        if show_progress:
            epoch_line(epoch, cfg.epochs, {**record, "train_loss": means["loss"]})
    return {key: value.cpu() for key, value in model.state_dict().items()}, records


def write_pretrained(out: str | Path, state: dict, records: list[dict], settings: PretrainSettings) -> dict:
    """``{"model": state, "meta": ...}`` (the layout ``hqm convert-weights`` reads) and
    ``<out>.json``: the settings, the per-epoch losses, the sha256. -> that record."""
    from dataclasses import asdict

    from hqm import __version__
    from hqm.engine.checkpoint import save_weights
    from hqm.io import sha256_file, write_json

    meta = {"source": "hqm pretrain-detr", "dataset": settings.pretrain.dataset, "hqm_version": __version__}
    save_weights(out, state, meta)
    record = {**meta, "path": str(out), "sha256": sha256_file(out), "num_keys": len(state),
              "pretrain": asdict(settings.pretrain), "model": asdict(settings.model),
              "augment": asdict(settings.augment), "dataset_root": settings.dataset.root, "epochs": records,
              "torch_threads": torch.get_num_threads()}
    write_json(f"{out}.json", record)
    return record


__all__ = ["build_detr_criterion", "detection_loader", "pretrain_detr", "write_pretrained"]
