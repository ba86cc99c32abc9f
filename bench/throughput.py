"""Training and inference images per second for a resolved run config; prints JSON lines.

    python bench/throughput.py --config runs/.../run_config.yaml [--steps 20] [--warmup 3] [--device auto]

Uses the real datasets, detector and criterion; training steps are full optimiser steps (global
batch, accumulation, clipping) of a single process; inference is the evaluation forward pass
plus post-processing.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps / inference batches")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)

    from hqm.config import load_run_config
    from hqm.engine.distributed import build_dist_env
    from hqm.engine.inference import autocast_context
    from hqm.engine.sampler import SeededItems, StepPlan
    from hqm.engine.train import (
        build_components,
        build_hard_schedule,
        build_optimizer,
        seed_everything,
        train_step,
    )
    from hqm.models.postprocess import postprocess_hoi

    cfg = load_run_config(args.config)
    env = build_dist_env(args.device, cfg.train.threads_per_rank)
    seed_everything(cfg.seed)
    comps = build_components(cfg)
    model, criterion = comps.model.to(env.device), comps.criterion.to(env.device)
    optimizer = build_optimizer(model, cfg.train)
    schedule = build_hard_schedule(cfg, env)
    plan = StepPlan(len(comps.train_set), cfg.train.global_batch_size, cfg.train.micro_batch_size, 1, 0, cfg.seed)
    items = SeededItems(comps.train_set)
    common = {"config": args.config, "method": cfg.method, "device": str(env.device),
              "threads": torch.get_num_threads(), "bf16": cfg.train.bf16}

    # batches are loaded before timing: the figure is model + optimiser throughput
    def step_batches(step: int):
        return [comps.collate([items[key] for key in mb]) for mb in plan.micro_batches(0, step % plan.steps_per_epoch)]

    model.train()
    timed = 0.0
    for step in range(args.warmup + args.steps):
        batches = step_batches(step)
        _sync(env.device)
        t0 = time.perf_counter()
        train_step(model, criterion, optimizer, batches, env, cfg.train, schedule.stream(0, step))
        _sync(env.device)
        if step >= args.warmup:
            timed += time.perf_counter() - t0
    images = args.steps * cfg.train.global_batch_size
    print(json.dumps({"phase": "train", **common, "global_batch_size": cfg.train.global_batch_size,
                      "micro_batch_size": cfg.train.micro_batch_size, "steps": args.steps,
                      "images_per_s": images / timed, "s_per_step": timed / args.steps}))

    model.eval()
    bs = cfg.train.eval_batch_size  # the in-training evaluation batch (run configs carry no evaluation section)
    n_test = len(comps.test_set)
    timed, images = 0.0, 0
    with torch.no_grad():
        for b in range(args.warmup + args.steps):
            idx = [(b * bs + i) % n_test for i in range(bs)]
            imgs, mask, targets = comps.collate([comps.test_set[i] for i in idx])
            _sync(env.device)
            t0 = time.perf_counter()
            with autocast_context(env.device, cfg.train.bf16):
                out = model(imgs.to(env.device), mask.to(env.device))
            out = {k: v.float() for k, v in out.items() if k != "aux_outputs"}
            postprocess_hoi(out, torch.stack([t["orig_size"] for t in targets]).to(env.device))
            _sync(env.device)
            if b >= args.warmup:
                timed += time.perf_counter() - t0
                images += bs
    print(json.dumps({"phase": "inference", **common, "batch_size": bs, "batches": args.steps,
                      "images_per_s": images / timed}))


if __name__ == "__main__":
    main()
