"""Which hard-positive stream an optimiser step uses (AJL, method.md §8.4)."""

from __future__ import annotations

import random

from hqm.errors import HqmError
from hqm.methods import HardStream, get_method

ALTERNATIONS = ("strict", "random")


class HardStreamSchedule:
    """Maps (epoch, optimiser step within the epoch) to ``"gbs"``, ``"amm"`` or ``None``.

    The streams come from the method registry (:mod:`hqm.methods`):

    * no stream (``qpic``): None; one stream (``gbs`` / ``amm``): that stream at every step;
    * two streams (``hqm``) with ``alternation="strict"`` (upstream ``--AJL``): first, second,
      first, ... restarting with the first (GBS) at step 0 of every epoch;
    * two streams with ``alternation="random"``: the first at step 0 of every epoch, afterwards a
      fair coin per step, independent per rank (upstream shuffles the flags with Python ``random``
      seeded 42 + rank). The coin is a pure function of (seed, rank, epoch, step), so a resumed run
      replays the same choices without any saved state.

    ``rank`` is the caller's distributed rank. All micro-batches of one optimiser step must use the
    same stream (the engine asks once per step).
    """

    def __init__(self, method: str, alternation: str = "strict", seed: int = 0, rank: int = 0):
        self.streams: tuple[HardStream, ...] = get_method(method, "hard-stream schedule").streams
        if alternation not in ALTERNATIONS:
            raise HqmError(f"hard-stream schedule: unknown alternation '{alternation}' (strict or random)")
        self.method = method
        self.alternation = alternation
        self.seed = seed
        self.rank = rank

    def stream(self, epoch: int, step: int) -> HardStream | None:
        if not self.streams:
            return None
        if len(self.streams) == 1:
            return self.streams[0]
        first, second = self.streams
        if step == 0 or self.alternation == "strict":
            return first if step % 2 == 0 else second
        coin = random.Random(f"ajl:{self.seed}:{self.rank}:{epoch}:{step}").random()
        return first if coin < 0.5 else second
