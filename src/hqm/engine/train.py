"""The training run: one code path for one CPU process, one GPU and N GPUs under torchrun.

One optimiser step consumes the global batch: each of the W ranks runs A = G / (W x micro)
micro-batches, gradients are summed locally (divided by A) and averaged over ranks by DDP, so any
(W, A) with the same G trains the same recipe (method.md §5.3). N_int, the loss normaliser of the
subject boxes (method.md §4), is computed once per step over all micro-batches of all ranks. The
AJL hard stream is chosen once per step, the same on every rank (method.md §8.4).

After the evaluated epochs (:mod:`hqm.engine.selection`) the fast selection metric is computed;
with ``train.ema_decay`` > 0 it scores, and the checkpoints hold, the running average of the
weights (:mod:`hqm.engine.weight_average`; the resumable state keeps both). The run writes
``checkpoint_last.pth`` and, with ``train.select_best``, ``checkpoint_best.pth``, plus log.jsonl,
curves.csv, config.yaml and train_summary.json (docs/protocol.md).
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from hqm.config import RunConfig, TrainConfig
from hqm.data.datasets import build_dataset, collate, dataset_meta
from hqm.engine import checkpoint as ckpt
from hqm.engine import metrics_io, prediction_cache, provenance, selection
from hqm.engine.checkpoint import load_initial_weights
from hqm.engine.distributed import DistEnv, all_gather_objects, all_reduce_sum, barrier
from hqm.engine.inference import autocast_context, evaluate_model, to_float
from hqm.engine.progress import Progress, epoch_line
from hqm.engine.resume import load_resumable, training_config
from hqm.engine.sampler import MicroBatchSampler, SeededItems, StepPlan
from hqm.engine.schedules import build_lr_scheduler, epoch_start_lr
from hqm.engine.weight_average import WeightAverage
from hqm.errors import HqmError
from hqm.io import atomic_write
from hqm.models.build import build_criterion, build_detector
from hqm.models.schedule import HardStreamSchedule


@dataclass
class TrainComponents:
    """What a run trains and evaluates on (built once at the edge by :func:`build_components`)."""

    model: torch.nn.Module
    criterion: torch.nn.Module
    train_set: Any
    test_set: Any
    collate: Any
    meta: Any  # DatasetMeta: format, root, num_obj_classes, num_verb_classes


def build_components(cfg: RunConfig, rank: int = 0) -> TrainComponents:
    """Datasets, detector and criterion of ``cfg`` (same weights on every rank: seeded).

    ``rank`` seeds the rank's own hard-query draws (GBS shifts, AMM ranks)."""
    meta = dataset_meta(cfg.dataset)
    model = build_detector(
        cfg.model, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes, seed=cfg.seed,
        rank=rank,
    )
    if cfg.model.init_weights:
        load_initial_weights(model, cfg.model.init_weights)
    criterion = build_criterion(
        cfg.loss, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes,
        dec_layers=cfg.model.dec_layers,
    )
    train_set = build_dataset(cfg.dataset, "train", cfg.augment, cache=cfg.train.cache_samples)
    test_set = build_dataset(cfg.dataset, "test", cfg.augment, cache=cfg.train.cache_samples)
    return TrainComponents(model, criterion, train_set, test_set, collate, meta)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; parameters whose name contains ``backbone`` get ``lr_backbone`` (method.md §5.1)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if "backbone" not in n]},
        {"params": [p for n, p in named if "backbone" in n], "lr": train.lr_backbone},
    ]
    groups = [g for g in groups if g["params"]]
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def build_hard_schedule(cfg: RunConfig, env: DistEnv):
    """The per-step hard-stream chooser (answers None for plain QPIC)."""
    return HardStreamSchedule(cfg.method, cfg.hard_queries.alternation, seed=cfg.seed, rank=env.rank)


def _to_device(targets: list[dict], device: torch.device) -> list[dict]:
    return [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]


def weighted_total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return sum(losses[k] * w for k, w in weights.items() if k in losses)


@dataclass
class StepResult:
    loss: float
    terms: dict[str, float]
    images: int


def train_step(
    model: torch.nn.Module,
    criterion: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[tuple[torch.Tensor, torch.Tensor, list[dict]]],
    env: DistEnv,
    train: TrainConfig,
    hard_stream: str | None,
) -> StepResult:
    """One optimiser step over this rank's micro-batches (all ranks call it together)."""
    accum = len(micro_batches)
    local_pairs = sum(len(t["obj_labels"]) for _, _, targets in micro_batches for t in targets)
    (total_pairs,) = all_reduce_sum([local_pairs], env)
    num_interactions = max(1.0, total_pairs / (env.world_size * accum))
    weights = criterion.weight_dict
    sums: dict[str, torch.Tensor] = {}
    for i, (images, mask, targets) in enumerate(micro_batches):
        images, mask = images.to(env.device), mask.to(env.device)
        targets = _to_device(targets, env.device)
        last = i == accum - 1
        sync = contextlib.nullcontext() if last or not env.distributed else model.no_sync()
        with sync:
            with autocast_context(env.device, train.bf16):
                outputs = model(images, mask, targets=targets, hard_stream=hard_stream)
            losses = criterion(to_float(outputs), targets, num_interactions)
            total = weighted_total(losses, weights)
            (total / accum).backward()
        sums["loss"] = sums.get("loss", 0) + total.detach()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0) + v.detach().float()
    if train.clip_max_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.clip_max_norm)
    optimizer.step()
    # "zeros" keeps zero-filled grads (torch 1.5, as published): a parameter unused in the next
    # step (the GBS encoder on an AMM step) still gets AdamW's moment and weight-decay update.
    optimizer.zero_grad(set_to_none=train.zero_grad == "none")
    keys = sorted(sums)
    values = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32) for k in keys]).cpu().tolist()
    means = {k: v / accum for k, v in zip(keys, values)}
    return StepResult(means.pop("loss"), means, sum(len(t) for _, _, t in micro_batches))


def _merge_sums(per_rank: list[dict[str, list[float]]]) -> dict[str, float]:
    """Mean of each logged term over ranks and steps: {name: [sum, count]} -> {name: mean}."""
    merged: dict[str, list[float]] = {}
    for sums in per_rank:
        for k, (s, n) in sums.items():
            acc = merged.setdefault(k, [0.0, 0])
            acc[0] += s
            acc[1] += n
    return {k: s / n for k, (s, n) in sorted(merged.items()) if n}


@dataclass
class Session:
    """One process's view of a run in progress (built by :func:`_start`)."""

    cfg: RunConfig
    run_dir: Path
    env: DistEnv
    comps: TrainComponents
    model: torch.nn.Module  # the bare model (state dicts); ``net`` is what trains (DDP or itself)
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    schedule: Any
    plan: StepPlan
    provenance: dict
    average: WeightAverage | None = None  # train.ema_decay > 0
    start_epoch: int = 0
    start_step: int = 0
    history: list = field(default_factory=list)  # one record per finished epoch
    loss_sums: dict = field(default_factory=dict)  # {term: [sum, count]} of the current epoch
    wall_before: float = 0.0  # training seconds of earlier (killed) sessions
    last_predictions: list | None = None  # rank 0, train.keep_last_predictions: the last epoch's test predictions
    session_t0: float = 0.0

    def wall_time(self) -> float:
        return self.wall_before + time.perf_counter() - self.session_t0

    @property
    def scored(self) -> torch.nn.Module:
        """The weights evaluated and saved: the running average when there is one."""
        return self.average.module if self.average is not None else self.model

    @property
    def best_path(self) -> Path:
        return self.run_dir / "state" / "best.pth"

    def snapshot(self, epoch: int, step: int) -> None:
        """Save the resumable state (every rank calls it: RNG states are gathered)."""
        per_rank = all_gather_objects({"rng": ckpt.capture_rng(self.model), "loss_sums": self.loss_sums}, self.env)
        if self.env.is_main:
            ckpt.save_state(self.run_dir, {
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.scheduler.state_dict(), "epoch": epoch, "step": step,
                "history": self.history, "per_rank": per_rank, "world_size": self.env.world_size,
                "config": training_config(self.cfg), "wall_time": self.wall_time(),
                "average": self.average.state_dict() if self.average is not None else None,
            })  # fmt: skip
        barrier(self.env)


def _wrap(model: torch.nn.Module, cfg: RunConfig, env: DistEnv) -> torch.nn.Module:
    if not env.distributed:
        return model
    find_unused = cfg.train.find_unused_parameters or cfg.method != "qpic"
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused)


def _start(cfg: RunConfig, run_dir: Path, env: DistEnv, comps: TrainComponents | None, restart: bool) -> Session:
    """Build everything, then restore the saved state unless this is a fresh start."""
    seed_everything(cfg.seed + env.rank)
    state = load_resumable(run_dir, cfg, env.world_size, restart)
    comps = comps if comps is not None else build_components(cfg, env.rank)
    model = comps.model.to(env.device)
    comps.criterion.to(env.device)
    train = cfg.train
    plan = StepPlan(len(comps.train_set), train.global_batch_size, train.micro_batch_size,
                    env.world_size, env.rank, cfg.seed)  # fmt: skip
    optimizer = build_optimizer(model, train)
    hosts = all_gather_objects(provenance.this_host(), env)
    s = Session(cfg, run_dir, env, comps, model, model, optimizer, build_lr_scheduler(optimizer, train, plan.steps_per_epoch),
                build_hard_schedule(cfg, env), plan, provenance.collect(cfg.seed, env.world_size, hosts),
                session_t0=time.perf_counter())  # fmt: skip
    if train.ema_decay > 0:
        s.average = WeightAverage(model, train.ema_decay)
    if state is not None:
        model.load_state_dict(state["model"])
        if s.average is not None:
            s.average.load_state_dict(state["average"])
        optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["lr_scheduler"])
        if train.zero_grad == "zeros":  # an uninterrupted run holds zero grads for every stepped param
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if optimizer.state.get(p):
                        p.grad = torch.zeros_like(p)
        s.start_epoch, s.start_step, s.history = state["epoch"], state["step"], state["history"]
        s.wall_before = state.get("wall_time", 0.0)
        mine = state["per_rank"][env.rank]
        ckpt.restore_rng(mine["rng"], model)
        s.loss_sums = mine["loss_sums"]
    elif env.is_main and s.best_path.exists():
        s.best_path.unlink()  # the best weights of a discarded state
    if env.is_main:
        with atomic_write(run_dir / "config.yaml", "w", encoding="utf-8") as handle:
            yaml.safe_dump({**training_config(cfg), "provenance": s.provenance}, handle, sort_keys=False)
    barrier(env)
    s.net = _wrap(model, cfg, env)
    return s


def _train_epoch(s: Session, epoch: int) -> tuple[float, int]:
    """Run the optimiser steps of ``epoch`` left to do; returns (seconds, images seen by all ranks)."""
    train, plan = s.cfg.train, s.plan
    first = s.start_step if epoch == s.start_epoch else 0
    if first == 0:
        s.loss_sums = {}
    s.net.train()
    s.comps.criterion.train()
    loader = DataLoader(
        SeededItems(s.comps.train_set), batch_sampler=MicroBatchSampler(plan, epoch, first),
        num_workers=train.num_workers, collate_fn=s.comps.collate,
        generator=torch.Generator(), persistent_workers=False,  # never touch the global RNG
    )  # fmt: skip
    batches = iter(loader)
    t0, images_seen = time.perf_counter(), 0
    bar = Progress(epoch, train.epochs, plan.steps_per_epoch, first, train.log_every_iters, s.env.is_main)
    for step in range(first, plan.steps_per_epoch):
        micro = [next(batches) for _ in range(plan.accumulation_steps)]
        stream = s.schedule.stream(epoch, step)
        result = train_step(s.net, s.comps.criterion, s.optimizer, micro, s.env, train, stream)
        s.scheduler.step()  # per optimiser step: warm-up and cosine need it; step is per-epoch exact
        if s.average is not None:
            s.average.update(s.model)
        if not np.isfinite(result.loss):
            raise HqmError(f"{s.run_dir}: loss is {result.loss} at epoch {epoch} step {step}; stopping")
        for k, v in [("loss", result.loss), *result.terms.items()]:
            acc = s.loss_sums.setdefault(k, [0.0, 0])
            acc[0] += v
            acc[1] += 1
        images_seen += result.images * s.env.world_size
        bar.update(result.loss, images_seen / max(time.perf_counter() - t0, 1e-9))
        done = epoch * plan.steps_per_epoch + step + 1
        if train.checkpoint_every_iters > 0 and done % train.checkpoint_every_iters == 0 \
                and step + 1 < plan.steps_per_epoch:
            s.snapshot(epoch, step + 1)
    bar.close()
    del batches, loader
    return time.perf_counter() - t0, images_seen


def _end_epoch(s: Session, epoch: int, elapsed: float, images: int) -> None:
    """Log the epoch, evaluate it when the cadence says so, keep the best weights, save state."""
    train, fmt = s.cfg.train, s.cfg.dataset.format
    lr = epoch_start_lr(s.scheduler, epoch * s.plan.steps_per_epoch)
    record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
    record.update({f"train_{k}": v for k, v in _merge_sums(all_gather_objects(s.loss_sums, s.env)).items()})
    record.update({"epoch_time": elapsed, "images_per_s": images / max(elapsed, 1e-9)})
    record["test"], record["selection_map"] = None, None
    if selection.is_eval_epoch(epoch, train):
        keep = train.keep_last_predictions and epoch == train.epochs - 1
        extra = {"on_predictions": lambda preds: setattr(s, "last_predictions", preds)} if keep else {}
        result = evaluate_model(s.scored, s.comps.test_set, s.comps.collate, s.comps.meta,
                                selection.selection_eval_config(train), s.env, train.num_workers, train.bf16, **extra)
        record["test"] = metrics_io.format_block(fmt, result)
        record["selection_map"] = selection.selection_score(fmt, record["test"])
    prior = [h["selection_map"] for h in s.history if h.get("selection_map") is not None]
    score = record["selection_map"]
    improved = score is not None and (not prior or score > max(prior))  # ties: the earliest epoch
    s.history.append(record)
    if train.select_best and improved and s.env.is_main:
        ckpt.save_checkpoint(s.best_path, s.scored.state_dict(), training_config(s.cfg), epoch + 1)
    s.snapshot(epoch + 1, 0)
    if s.env.is_main:
        metrics_io.write_log(s.run_dir / "log.jsonl", s.history, fmt)
        metrics_io.write_curves(s.run_dir / "curves.csv", s.history)
        epoch_line(epoch, train.epochs, record)


def _finish(s: Session) -> dict:
    """The final artefacts: checkpoint_last/best.pth, log.jsonl, curves.csv, train_summary.json."""
    cfg, fmt, wall = s.cfg, s.cfg.dataset.format, s.wall_time()
    summary = {
        "dataset": cfg.dataset_name, "format": fmt, "variant": cfg.variant, "method": cfg.method,
        "seed": cfg.seed, "epochs": cfg.train.epochs,
        "selection": selection.summary(fmt, s.history, cfg.train.select_best),
        "wall_time_s": wall, "provenance": {**s.provenance, "wall_time_s": wall},
    }  # fmt: skip
    if s.env.is_main:
        ckpt.save_checkpoint(s.run_dir / "checkpoint_last.pth", s.scored.state_dict(), training_config(cfg), cfg.train.epochs)
        _keep_predictions(s)
        if cfg.train.select_best:
            if not s.best_path.is_file():
                raise HqmError(f"{s.run_dir}: select_best is on but no epoch was scored (no test metric)")
            best = torch.load(s.best_path, map_location="cpu", weights_only=True)
            ckpt.save_checkpoint(s.run_dir / "checkpoint_best.pth", best["model"], best["config"], best["epoch"])
        metrics_io.write_log(s.run_dir / "log.jsonl", s.history, fmt)
        metrics_io.write_curves(s.run_dir / "curves.csv", s.history)
        metrics_io.write_summary(s.run_dir / "train_summary.json", summary)
    barrier(s.env)
    return summary


def _keep_predictions(s: Session) -> None:
    """predictions_last.pt for hqm evaluate (hqm.engine.prediction_cache); a stale one is removed."""
    last = s.run_dir / "checkpoint_last.pth"
    path = prediction_cache.cache_path(last)
    if not s.last_predictions:  # not asked for, or the last evaluation ran in a killed session
        path.unlink(missing_ok=True)
        return
    key = prediction_cache.context_key(last, s.comps.meta.test_annotations, s.comps.meta.root,
                                       s.cfg.train.eval_batch_size, s.env, s.cfg.train.bf16)
    prediction_cache.save_predictions(path, key, s.last_predictions)


def run_training(cfg: RunConfig, run_dir: str | Path, env: DistEnv, components: TrainComponents | None = None,
                 restart: bool = False) -> dict:
    """Train (resuming from ``<run_dir>/state`` unless ``restart``), evaluating on the configured
    cadence; returns the train_summary.json content (on every rank)."""
    if cfg.train.epochs < 1:
        raise HqmError(f"train.epochs: {cfg.train.epochs}; a run needs at least one epoch")
    s = _start(cfg, Path(run_dir), env, components, restart)
    for epoch in range(s.start_epoch, cfg.train.epochs):
        elapsed, images = _train_epoch(s, epoch)
        _end_epoch(s, epoch, elapsed, images)
    return _finish(s)
