"""A tiny real run: the synthetic generator's HICO-DET layout and a very small QPIC / HQM model."""

from __future__ import annotations

from pathlib import Path

from hqm.config import (
    AugmentConfig,
    DatasetConfig,
    ModelConfig,
    RunConfig,
    SyntheticConfig,
    TrainConfig,
)  # fmt: skip


def make_dataset(root: Path, num_train: int = 8, num_test: int = 4) -> Path:
    from hqm.data.synthetic import make_synthetic

    if not (root / "annotations").is_dir():
        make_synthetic(SyntheticConfig(seed=0, num_train=num_train, num_test=num_test, image_size=96,
                                       max_people=1, max_objects=1), "hico", root)
    return root


def tiny_config(root: Path, method: str = "qpic", **train_kw) -> RunConfig:
    train = dict(epochs=2, lr_drop=1, global_batch_size=4, micro_batch_size=2, num_workers=0,
                 threads_per_rank=1, checkpoint_every_iters=1, eval_every_epochs=0)
    train.update(train_kw)
    model = ModelConfig(backbone="resnet18", hidden_dim=16, nheads=2, enc_layers=1, dec_layers=2,
                        dim_feedforward=32, dropout=0.0, num_queries=6)
    augment = AugmentConfig(scales=[64, 72], max_size=96, crop_resize_scales=[48, 56], crop_min_size=40,
                            crop_max_size=64, test_scale=64, max_boxes=20)
    return RunConfig(dataset_name="synthetic_hico", dataset=DatasetConfig(format="hico", root=str(root)),
                     variant=method, method=method, seed=42, model=model, augment=augment,
                     train=TrainConfig(**train))


def uniform_components(cfg: RunConfig):
    """Real detector + criterion on 4 training images of one size, each with one pair and one verb.

    The test transform (no random augmentation) keeps every image the same size, and with equal
    per-image statistics the per-micro-batch normalisers (object CE mean, focal N_pos, object-box
    count) agree with the single-batch ones: accumulation must reproduce the big batch.
    """
    import torch
    from torch.utils.data import Subset

    from hqm.engine.train import build_components

    torch.manual_seed(0)
    comps = build_components(cfg)
    fixed = type(comps.test_set)(comps.train_set.meta, "train", comps.test_set.transform,
                                 comps.train_set.max_boxes)
    keep = [i for i in range(len(fixed))
            if len(fixed[i][1]["obj_labels"]) == 1 and fixed[i][1]["verb_labels"].sum() == 1]
    assert len(keep) >= 4, keep
    comps.train_set = Subset(fixed, keep[:4])
    return comps


def initial_weights(root) -> dict:
    return uniform_components(tiny_config(Path(root), "qpic")).model.state_dict()


def uniform_run(rank: int, world: int, root: str, run_dir: str, micro: int, port: int) -> None:
    """One training epoch (= one optimiser step of 4 images) on :func:`uniform_components`."""
    import os

    import hqm.engine.train as engine_train
    from hqm.engine.distributed import build_dist_env, shutdown

    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    cfg = tiny_config(Path(root), "qpic", epochs=1, micro_batch_size=micro)
    evaluate = engine_train.evaluate_model
    engine_train.evaluate_model = lambda *args, **kwargs: {"hico": {}}  # weights are what we compare
    env = build_dist_env("cpu", 1)
    try:
        engine_train.run_training(cfg, run_dir, env, uniform_components(cfg))
    finally:
        engine_train.evaluate_model = evaluate
        shutdown(env)


def gbs_then_amm(rank: int, world: int, root: str, out: str, zero_grad: str, port: int) -> None:
    """Two optimiser steps of the tiny HQM model (GBS, then AMM: the GBS query encoder is unused);
    rank 0 saves the encoder's weights and AdamW state after each step to ``out``."""
    import os

    import torch

    from hqm.engine.distributed import build_dist_env, shutdown
    from hqm.engine.train import _wrap, build_components, build_optimizer, train_step

    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    cfg = tiny_config(Path(root), "hqm", zero_grad=zero_grad)
    env = build_dist_env("cpu", 1)
    try:
        torch.manual_seed(0)
        comps = build_components(cfg, env.rank)
        model = comps.model
        net = _wrap(model, cfg, env)
        optimizer = build_optimizer(model, cfg.train)
        batch = comps.collate([comps.train_set[i] for i in (2 * rank, 2 * rank + 1)])
        encoder = dict(model.query_embed_sp.named_parameters())
        snaps = []
        for stream in ("gbs", "amm"):
            train_step(net, comps.criterion, optimizer, [batch], env, cfg.train, stream)
            snaps.append({name: {"weight": p.detach().clone(),
                                 **{k: v.clone() for k, v in optimizer.state.get(p, {}).items()}}
                          for name, p in encoder.items()})
        if env.is_main:
            torch.save(snaps, out)
    finally:
        shutdown(env)
