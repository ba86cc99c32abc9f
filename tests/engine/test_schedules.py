"""hqm.engine.schedules: the lr schedules stepped once per optimiser step."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from hqm.config import TrainConfig
from hqm.engine.schedules import build_lr_scheduler
from hqm.errors import HqmError


def _optimizer(lr: float = 1e-3, lr_backbone: float = 1e-4) -> torch.optim.Optimizer:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": lr_backbone}], lr=lr)


def _lrs(opt, sched, steps: int) -> list[list[float]]:
    """The lr of every group at each of ``steps`` optimiser steps (read before the step)."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


def test_step_schedule_equals_steplr_per_epoch():
    cfg = TrainConfig(epochs=7, lr_drop=3, lr=1e-3, lr_backbone=1e-4)
    spe = 5
    opt = _optimizer()
    ours = _lrs(opt, build_lr_scheduler(opt, cfg, spe), cfg.epochs * spe)
    ref_opt = _optimizer()
    ref = torch.optim.lr_scheduler.StepLR(ref_opt, cfg.lr_drop)
    expected = []
    for _ in range(cfg.epochs):
        expected += [[g["lr"] for g in ref_opt.param_groups]] * spe
        ref_opt.step()
        ref.step()
    assert np.array(ours) == pytest.approx(np.array(expected), rel=1e-12)
    assert ours[3 * spe - 1][0] == pytest.approx(1e-3) and ours[3 * spe][0] == pytest.approx(1e-4)


def test_cosine_with_warmup_rises_then_falls_to_the_floor():
    cfg = replace(TrainConfig(epochs=4, lr=1e-3, lr_backbone=1e-4), lr_schedule="cosine",
                  warmup_epochs=0.5, min_lr_ratio=0.01)  # fmt: skip
    spe = 10
    opt = _optimizer()
    seen = [lr for lr, _ in _lrs(opt, build_lr_scheduler(opt, cfg, spe), cfg.epochs * spe)]
    assert seen[:5] == pytest.approx([1e-3 * k / 5 for k in range(1, 6)])  # linear warm-up, 5 steps
    assert seen[5] == pytest.approx(1e-3)  # the full lr once warm, then half a cosine over 34 steps
    assert seen[6] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 34))))
    assert seen[-1] == pytest.approx(1e-5)  # the last step runs at min_lr_ratio x lr
    tail = seen[5:]
    assert all(a > b for a, b in zip(tail, tail[1:]))  # strictly decreasing after warm-up
    assert opt.param_groups[1]["initial_lr"] == pytest.approx(1e-4)  # each group keeps its base lr


def test_state_dict_resumes_mid_schedule():
    cfg = replace(TrainConfig(epochs=3, lr=1e-3), lr_schedule="cosine", warmup_epochs=1.0)
    opt = _optimizer()
    sched = build_lr_scheduler(opt, cfg, 4)
    _lrs(opt, sched, 6)
    state = sched.state_dict()
    opt2 = _optimizer()
    sched2 = build_lr_scheduler(opt2, cfg, 4)  # built first, then loaded: the order train.py resumes in
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    assert np.array(_lrs(opt2, sched2, 6)) == pytest.approx(np.array(_lrs(opt, sched, 6)))


def test_unknown_schedule_is_a_one_line_error():
    cfg = replace(TrainConfig(), lr_schedule="linear")
    with pytest.raises(HqmError, match="train.lr_schedule: 'linear'"):
        build_lr_scheduler(_optimizer(), cfg, 3)
