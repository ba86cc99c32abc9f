"""Learning-rate schedules, stepped once per optimiser step (``train.lr_schedule``).

* ``step`` (default; QPIC/DETR, method.md §5.1): the lr is multiplied by 0.1 once, after
  ``train.lr_drop`` epochs -- the same values per epoch as ``torch.optim.lr_scheduler.StepLR(
  optimizer, lr_drop)`` stepped per epoch (gamma 0.1 only ever applied once in a 150-epoch run
  with lr_drop 100; further drops every lr_drop epochs as StepLR does).
* ``cosine`` (a modern option, not in the published recipes; Loshchilov & Hutter, SGDR, ICLR 2017):
  the lr follows half a cosine from the base lr down to ``base x train.min_lr_ratio`` at the last
  step. Used by the CPU demo so its curves flatten before the end (docs/demo.md).

Either schedule may start with a linear warm-up over ``train.warmup_epochs`` epochs (fractions
allowed; Goyal et al. 2017): the factor rises from 1/W to 1 over the first W steps. Warm-up 0 and
``step`` reproduce today's StepLR exactly.
"""

from __future__ import annotations

import math

import torch

from hqm.config import TrainConfig
from hqm.errors import HqmError


class _Factor:
    """The lr multiplier of optimiser step ``i`` (0-based): a picklable callable for LambdaLR."""

    def __init__(self, kind: str, steps_per_epoch: int, epochs: int, lr_drop: int,
                 warmup_steps: int, min_ratio: float) -> None:  # fmt: skip
        self.kind = kind
        self.steps_per_epoch = steps_per_epoch
        self.total = max(1, epochs * steps_per_epoch)
        self.lr_drop = lr_drop
        self.warmup = warmup_steps
        self.min_ratio = min_ratio

    def __call__(self, i: int) -> float:
        if self.kind == "step":
            factor = 0.1 ** ((i // self.steps_per_epoch) // self.lr_drop)
        else:
            span = max(1, self.total - 1 - self.warmup)
            progress = min(1.0, max(0.0, (i - self.warmup) / span))
            factor = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if i < self.warmup:
            factor *= (i + 1) / self.warmup
        return factor


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, train_cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of ``train_cfg``; call ``.step()`` after every optimiser step.

    ``steps_per_epoch``: optimiser steps per epoch (global batches). Every parameter group keeps
    its own base lr (``lr`` / ``lr_backbone``) and gets the same factor.
    """
    kind = getattr(train_cfg, "lr_schedule", "step")
    if kind not in ("step", "cosine"):
        raise HqmError(f"train.lr_schedule: {kind!r} is not 'step' or 'cosine'")
    if steps_per_epoch < 1:
        raise HqmError(f"train: {steps_per_epoch} optimiser steps per epoch; the training split is empty")
    warmup = round(float(getattr(train_cfg, "warmup_epochs", 0.0)) * steps_per_epoch)
    factor = _Factor(kind, steps_per_epoch, train_cfg.epochs, train_cfg.lr_drop, warmup,
                     float(getattr(train_cfg, "min_lr_ratio", 0.0)))  # fmt: skip
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epoch_start_lr(scheduler: torch.optim.lr_scheduler.LambdaLR, first_step: int) -> float:
    """The first parameter group's lr at optimiser step ``first_step`` (what an epoch logs), also
    when a resumed epoch started in its middle."""
    return scheduler.base_lrs[0] * scheduler.lr_lambdas[0](first_step)
