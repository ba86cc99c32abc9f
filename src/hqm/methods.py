"""The one registry of training methods: QPIC and its hard-positive variants (method.md §8).

Everything that depends on which method a variant uses reads it from here: the config types and
the JSON schema (the method names), the AJL schedule and the detector builder (the hard streams),
the pipeline (which ``hard_queries`` sub-sections a run depends on) and the weight conversion
(the head layout of the initial weights). Torch-free, so the drivers and the schema can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hqm.errors import HqmError

HardStream = Literal["gbs", "amm"]


@dataclass(frozen=True)
class Method:
    """One training method.

    ``streams``: the hard-positive streams it trains (GBS and AMM alone run theirs every step; HQM
    alternates them per optimiser step, method.md §8.4). ``hard_query_keys``: the ``hard_queries``
    entries it reads. ``weight_layout``: the head layout of its initial weights (method.md §7.5).
    ``default_loss_weight``: the hard-stream loss weight of the published code for this method.
    """

    name: str
    streams: tuple[HardStream, ...]
    hard_query_keys: tuple[str, ...]
    weight_layout: Literal["qpic", "hqm"]
    default_loss_weight: float | None

    @property
    def alternates(self) -> bool:
        """Two streams chosen per optimiser step (AJL) rather than one stream every step."""
        return len(self.streams) > 1


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("qpic", (), (), "qpic", None),
        Method("gbs", ("gbs",), ("gbs", "loss_weight"), "hqm", 1.0),
        Method("amm", ("amm",), ("amm", "loss_weight"), "hqm", 1.0),
        Method("hqm", ("gbs", "amm"), ("gbs", "amm", "alternation", "loss_weight"), "hqm", 0.8),
    )
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name: str, where: str = "method") -> Method:
    """The registered method ``name``; an unknown name is an :class:`HqmError` naming ``where``."""
    try:
        return METHODS[name]
    except KeyError:
        raise HqmError(f"{where}: unknown method {name!r} (known: {', '.join(METHOD_NAMES)})") from None
