"""Hard cases of the synthetic data: the situations hard queries are meant to help with.

A scene drawn "hard" gets one of three cases (docs/synthetic.md):

* ``occlusion``: a grey block hides 35-55 % of one person or object from one side; the annotated
  box stays the whole drawn extent (the detector must infer what it cannot see).
* ``truncation``: one group (a person and its object, or a lone person) is pushed over the left or
  right image border so 20-55 % of it is cut off; boxes are clipped to the image, and every entity
  of the group keeps at least 40 % of its width inside.
* ``contact``: the first person holds or kicks; with probability 1/2 the object is drawn a few
  pixels away from the hand (foot) instead of touching it, and that pair is NOT an interaction. The
  body pose is the same either way, so the only evidence is the small region between hand and
  object.

All randomness of a hard case comes from its own NumPy stream, so the scenes of a configuration
without hard cases (``hard_fraction: 0``) are drawn exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HARD_CASES = ("occlusion", "truncation", "contact")
CONTACT_POSES = ("hold", "kick")  # poses whose evidence is one contact point (hand / foot on object)
MIN_VISIBLE = 0.4  # truncation keeps at least this fraction of every entity's width in the image


@dataclass
class HardPlan:
    """The hard case chosen for one scene and the stream its details are drawn from."""

    kind: str
    rng: np.random.Generator

    def contact_pose(self) -> str | None:
        """The first person's pose in a ``contact`` scene (None for the other cases)."""
        return str(self.rng.choice(CONTACT_POSES)) if self.kind == "contact" else None

    def near_miss(self, pose: str) -> bool:
        """Whether a hold / kick group of a ``contact`` scene misses its object."""
        return self.kind == "contact" and pose in CONTACT_POSES and bool(self.rng.random() < 0.5)

    def gap(self, u: float) -> float:
        """Pixels between hand (foot) and object in a near miss: visible, but small."""
        return float(self.rng.uniform(3.0, 6.0)) * u


def case_weights(cfg) -> dict[str, float]:
    """Relative weight of each hard case: ``synthetic.hard_<case>`` of the config."""
    return {case: float(getattr(cfg, f"hard_{case}")) for case in HARD_CASES}


def choose_plan(weights: dict[str, float], fraction: float, rng: np.random.Generator, force: bool) -> HardPlan | None:
    """A plan for the next scene: with probability ``fraction`` (always with ``force``), else None.

    The case is drawn in proportion to ``weights`` (case -> weight >= 0, not all zero).
    """
    if not force and (fraction <= 0 or rng.random() >= fraction):
        return None
    total = sum(weights.values())
    pick = rng.random() * total
    for case, weight in weights.items():
        if pick < weight:
            return HardPlan(case, rng)
        pick -= weight
    return HardPlan(max(weights, key=weights.get), rng)  # rounding at the top end


def _extent(group) -> tuple[float, float, float, float]:
    return (min(e.shape.extent[0] for e in group), min(e.shape.extent[1] for e in group),
            max(e.shape.extent[2] for e in group), max(e.shape.extent[3] for e in group))  # fmt: skip


def _overlaps(a, b, pad: float = 2.0) -> bool:
    return not (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1] or b[3] + pad <= a[1])


def _visible(group, dx: float, size: int) -> float:
    """Smallest fraction of an entity's width left inside [0, size] after moving the group by dx."""
    fractions = []
    for e in group:
        x1, _, x2, _ = e.shape.extent
        inside = min(x2 + dx, size) - max(x1 + dx, 0)
        fractions.append(max(inside, 0.0) / max(x2 - x1, 1e-6))
    return min(fractions)


def truncate(placed: list, plan: HardPlan, size: int) -> list:
    """Push one group of ``placed`` [(group index, entities)] over the nearer side border.

    Groups with an interaction are tried first; a move that would overlap another group, or leave
    less than 20 % of the group outside, is not made. Returns the (possibly) changed list.
    """
    order = sorted(range(len(placed)), key=lambda k: (len(placed[k][1]) != 2, float(plan.rng.random())))
    for k in order:
        gi, group = placed[k]
        x1, y1, x2, y2 = _extent(group)
        width = x2 - x1
        cut = float(plan.rng.uniform(0.2, 0.55)) * width
        dx = -(x1 + cut) if (x1 + x2) / 2 < size / 2 else (size - x2) + cut
        while abs(dx) > 0 and _visible(group, dx, size) < MIN_VISIBLE:
            dx *= 0.9
        outside = max(0.0, -(x1 + dx)) + max(0.0, x2 + dx - size)
        moved = (x1 + dx, y1, x2 + dx, y2)
        others = [_extent(g) for j, (_, g) in enumerate(placed) if j != k]
        if outside < 0.2 * width or any(_overlaps(moved, o) for o in others):
            continue
        new = list(placed)
        new[k] = (gi, [type(e)(e.kind, e.name, e.shape.moved(dx, 0.0)) for e in group])
        return new
    return placed


def occluder(entities: list, interactions: list, plan: HardPlan, u: float) -> tuple | None:
    """A grey block ((x1, y1, x2, y2), colour) hiding part of one person or object.

    The target is a member of an interaction when there is one (person or object, 1/2 each), else
    any entity. The block covers 35-55 % of the target's extent from a random side and reaches a
    little past it on the other axis, like a wall or a crate in front of it.
    """
    if interactions:
        it = interactions[int(plan.rng.integers(len(interactions)))]
        target = entities[it.person if plan.rng.random() < 0.5 else it.obj]
    elif entities:
        target = entities[int(plan.rng.integers(len(entities)))]
    else:
        return None
    x1, y1, x2, y2 = target.shape.extent
    f = float(plan.rng.uniform(0.35, 0.55))
    side = int(plan.rng.integers(4))  # 0 left, 1 right, 2 top, 3 bottom
    pad = 3.0 * u
    if side == 0:
        box = (x1 - pad, y1 - pad, x1 + f * (x2 - x1), y2 + pad)
    elif side == 1:
        box = (x2 - f * (x2 - x1), y1 - pad, x2 + pad, y2 + pad)
    elif side == 2:
        box = (x1 - pad, y1 - pad, x2 + pad, y1 + f * (y2 - y1))
    else:
        box = (x1 - pad, y2 - f * (y2 - y1), x2 + pad, y2 + pad)
    grey = int(plan.rng.integers(110, 171))
    return box, (grey, grey, grey)
