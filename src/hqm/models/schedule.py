"""Which hard-positive stream an optimiser step uses (AJL, method.md §8.4)."""

from __future__ import annotations

import random
from typing import Literal

from hqm.errors import HqmError

HardStream = Literal["gbs", "amm"]
METHODS = ("qpic", "gbs", "amm", "hqm")


class HardStreamSchedule:
    """Maps (epoch, optimiser step within the epoch) to ``"gbs"``, ``"amm"`` or ``None``.

    * ``qpic``: no hard stream; ``gbs`` / ``amm``: that stream at every step;
    * ``hqm`` with ``alternation="strict"`` (upstream ``--AJL``): GBS, AMM, GBS, ... restarting
      with GBS at step 0 of every epoch;
    * ``hqm`` with ``alternation="random"``: GBS at step 0 of every epoch, afterwards a fair coin
      per step, independent per rank (upstream shuffles the flags with Python ``random`` seeded
      42 + rank). The coin is a pure function of (seed, rank, epoch, step), so a resumed run
      replays the same choices without any saved state.

    All micro-batches of one optimiser step must use the same stream (the engine asks once per step).
    """

    def __init__(self, method: str, alternation: str = "strict", seed: int = 0, rank: int = 0):
        if method not in METHODS:
            raise HqmError(f"hard-stream schedule: unknown method '{method}' (one of {', '.join(METHODS)})")
        if alternation not in ("strict", "random"):
            raise HqmError(f"hard-stream schedule: unknown alternation '{alternation}' (strict or random)")
        self.method = method
        self.alternation = alternation
        self.seed = seed
        self.rank = rank

    def stream(self, epoch: int, step: int) -> HardStream | None:
        if self.method == "qpic":
            return None
        if self.method in ("gbs", "amm"):
            return self.method
        if step == 0 or self.alternation == "strict":
            return "gbs" if step % 2 == 0 else "amm"
        coin = random.Random(f"ajl:{self.seed}:{self.rank}:{epoch}:{step}").random()
        return "gbs" if coin < 0.5 else "amm"
