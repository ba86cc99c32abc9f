"""An exponential moving average of the trained weights, evaluated and saved instead of the raw ones.

Off in the paper runs (``train.ema_decay: 0``: QPIC and HQM evaluate the raw weights); the CPU demo
turns it on because its raw weights still swing by several mAP points from one epoch to the next
at the end of training (docs/demo.md, "Averaged weights").

The average is bias-corrected: after ``t`` optimiser steps it is
``sum_i d^(t-i) w_i / sum_i d^(t-i)`` over the weights ``w_1 .. w_t`` after each step, so it starts
at the first step's weights instead of being pulled towards the initial ones, and it averages over
about ``1 / (1 - d)`` steps once ``t`` is large. Floating-point buffers (BatchNorm's running
statistics) are averaged like parameters; integer buffers (``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch


def step_decay(decay: float, updates: int) -> float:
    """The weight the running average keeps at update number ``updates`` (1-based):
    ``(d - d^t) / (1 - d^t)``, 0 at the first update (the average is then the weights themselves)."""
    power = decay**updates
    return (decay - power) / (1.0 - power)


class WeightAverage:
    """The averaged weights live in ``module``, a frozen copy of the model in eval mode."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay: {decay} must be in (0, 1) when the average is on")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold ``model``'s current weights into the average (after each optimiser step)."""
        self.updates += 1
        keep = step_decay(self.decay, self.updates)
        current = model.state_dict()
        for key, average in self.module.state_dict().items():
            value = current[key].detach()
            if average.is_floating_point():
                average.lerp_(value.to(average.dtype), 1.0 - keep)
            else:
                average.copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["decay"] != self.decay:
            raise ValueError(f"saved average has decay {state['decay']}, this run {self.decay}")
        self.updates = state["updates"]
        self.module.load_state_dict(state["module"])
