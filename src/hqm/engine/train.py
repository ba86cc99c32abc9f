"""The training run: one code path for one CPU process, one GPU and N GPUs under torchrun.

One optimiser step consumes the global batch: each of the W ranks runs A = G / (W x micro)
micro-batches, gradients are summed locally (divided by A) and averaged over ranks by DDP, so any
(W, A) with the same G trains the same recipe (method.md §5.3). N_int, the loss normaliser of the
subject boxes (method.md §4), is computed once per step over all micro-batches of all ranks. The
AJL hard stream is chosen once per step, the same on every rank (method.md §8.4).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from hqm.config import RunConfig, TrainConfig, save_run_config, to_dict
from hqm.engine import checkpoint as ckpt
from hqm.engine import metrics_io
from hqm.engine.distributed import DistEnv, all_gather_objects, all_reduce_sum, barrier
from hqm.engine.inference import autocast_context, evaluate_model, to_float
from hqm.engine.sampler import MicroBatchSampler, SeededItems, StepPlan
from hqm.errors import HqmError


@dataclass
class TrainComponents:
    """What a run trains and evaluates on (built once at the edge by :func:`build_components`)."""

    model: torch.nn.Module
    criterion: torch.nn.Module
    train_set: Any
    test_set: Any
    collate: Any
    meta: Any  # DatasetMeta: format, root, num_obj_classes, num_verb_classes


def build_components(cfg: RunConfig) -> TrainComponents:
    """Datasets, detector and criterion of ``cfg`` (same weights on every rank: seeded)."""
    from hqm.data.datasets import build_dataset, collate, dataset_meta
    from hqm.models.build import build_criterion, build_detector

    meta = dataset_meta(cfg.dataset)
    model = build_detector(
        cfg.model, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes, seed=cfg.seed
    )
    if cfg.model.init_weights:
        from hqm.engine.checkpoint import load_initial_weights

        load_initial_weights(model, cfg.model.init_weights)
    criterion = build_criterion(
        cfg.loss, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes
    )
    train_set = build_dataset(cfg.dataset, "train", cfg.augment)
    test_set = build_dataset(cfg.dataset, "test", cfg.augment)
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
    from hqm.models.schedule import HardStreamSchedule

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
    optimizer.zero_grad(set_to_none=True)
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


def _progress(total: int, initial: int, env: DistEnv, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
        disable=(not env.is_main) or None, file=sys.stderr,
    )  # fmt: skip


def _is_eval_epoch(epoch: int, train: TrainConfig) -> bool:
    last = epoch == train.epochs - 1
    every = train.eval_every_epochs
    return last or (every > 0 and (epoch + 1) % every == 0)


def run_training(cfg: RunConfig, run_dir: str | Path, env: DistEnv, components: TrainComponents | None = None) -> dict:
    """Train (resuming from ``<run_dir>/state`` if present), evaluate, write the final artefacts.

    Returns the metrics dict written to ``metrics.json`` (on every rank).
    """
    run_dir = Path(run_dir)
    train = cfg.train
    seed_everything(cfg.seed + env.rank)
    comps = components if components is not None else build_components(cfg)
    model = comps.model.to(env.device)
    criterion = comps.criterion.to(env.device)
    plan = StepPlan(len(comps.train_set), train.global_batch_size, train.micro_batch_size,
                    env.world_size, env.rank, cfg.seed)  # fmt: skip
    optimizer = build_optimizer(model, train)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, train.lr_drop)
    schedule = build_hard_schedule(cfg, env)
    if env.is_main:
        save_run_config(cfg, run_dir / "config.yaml")

    start_epoch, start_step, history = 0, 0, []
    loss_sums: dict[str, list[float]] = {}
    state = ckpt.load_state(run_dir)
    if state is not None and state.get("config") != to_dict(cfg):
        state = None  # the state of another configuration (params changed since): train afresh
    if state is not None:
        if state["world_size"] != env.world_size:
            raise HqmError(
                f"{ckpt.state_path(run_dir)}: saved with world size {state['world_size']}, "
                f"resumed with {env.world_size}; resume with the same --nproc"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["lr_scheduler"])
        start_epoch, start_step, history = state["epoch"], state["step"], state["history"]
        mine = state["per_rank"][env.rank]
        ckpt.restore_rng(mine["rng"], model)
        loss_sums = mine["loss_sums"]

    find_unused = train.find_unused_parameters or cfg.method != "qpic"
    ddp_model = (
        DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
            find_unused_parameters=find_unused,
        )
        if env.distributed else model
    )  # fmt: skip

    def snapshot(epoch: int, step: int) -> None:
        per_rank = all_gather_objects({"rng": ckpt.capture_rng(model), "loss_sums": loss_sums}, env)
        if env.is_main:
            ckpt.save_state(run_dir, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "lr_scheduler": scheduler.state_dict(), "epoch": epoch, "step": step,
                "history": history, "per_rank": per_rank, "world_size": env.world_size,
                "config": to_dict(cfg),
            })  # fmt: skip
        barrier(env)

    workers = train.num_workers
    items = SeededItems(comps.train_set)
    for epoch in range(start_epoch, train.epochs):
        first = start_step if epoch == start_epoch else 0
        if first == 0:
            loss_sums = {}
        ddp_model.train()
        criterion.train()
        loader = DataLoader(
            items, batch_sampler=MicroBatchSampler(plan, epoch, first), num_workers=workers,
            collate_fn=comps.collate, generator=torch.Generator(),  # never touch the global RNG
            persistent_workers=False,
        )  # fmt: skip
        batches = iter(loader)
        t0, images_seen = time.perf_counter(), 0
        bar = _progress(plan.steps_per_epoch, first, env, f"epoch {epoch + 1}/{train.epochs}")
        for step in range(first, plan.steps_per_epoch):
            micro = [next(batches) for _ in range(plan.accumulation_steps)]
            stream = schedule.stream(epoch, step)
            result = train_step(ddp_model, criterion, optimizer, micro, env, train, stream)
            if not np.isfinite(result.loss):
                raise HqmError(f"{run_dir}: loss is {result.loss} at epoch {epoch} step {step}; stopping")
            for k, v in [("loss", result.loss), *result.terms.items()]:
                acc = loss_sums.setdefault(k, [0.0, 0])
                acc[0] += v
                acc[1] += 1
            images_seen += result.images * env.world_size
            rate = images_seen / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{result.loss:.4f}", img_s=f"{rate:.1f}", refresh=False)
            bar.update(1)
            done = epoch * plan.steps_per_epoch + step + 1
            if train.checkpoint_every_iters > 0 and done % train.checkpoint_every_iters == 0 \
                    and step + 1 < plan.steps_per_epoch:
                snapshot(epoch, step + 1)
        bar.close()
        del batches, loader
        elapsed = time.perf_counter() - t0
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
        record.update({f"train_{k}": v for k, v in _merge_sums(all_gather_objects(loss_sums, env)).items()})
        record.update({"epoch_time": elapsed, "images_per_s": images_seen / max(elapsed, 1e-9)})
        record["test"] = None
        if _is_eval_epoch(epoch, train):
            result = evaluate_model(model, comps.test_set, comps.collate, comps.meta, cfg.evaluation,
                                    env, workers, train.bf16)  # fmt: skip
            record["test"] = metrics_io.format_block(cfg.dataset.format, result)
        history.append(record)
        snapshot(epoch + 1, 0)
        if env.is_main:
            metrics_io.write_log(run_dir / "log.jsonl", history, cfg.dataset.format)

    metrics = metrics_io.build_metrics(cfg, history)
    if env.is_main:
        ckpt.save_checkpoint(run_dir / "checkpoint.pth", model.state_dict(), to_dict(cfg), train.epochs)
        metrics_io.write_log(run_dir / "log.jsonl", history, cfg.dataset.format)
        metrics_io.write_metrics(run_dir / "metrics.json", metrics)
    barrier(env)
    return metrics
