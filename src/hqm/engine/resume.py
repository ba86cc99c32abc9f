"""Resuming a run: the saved state must belong to the same configuration.

A state saved under another resolved configuration is an error naming the differing keys; the
user either restores the configuration or restarts the run (``hqm train --restart``), which
discards the state. Keys that cannot change a result (threads, loader workers, logging and
snapshot intervals) may differ. The ``evaluation`` section is not part of a training's config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hqm.config import RunConfig, to_dict
from hqm.engine import checkpoint as ckpt
from hqm.errors import HqmError

# train.* keys that change neither the weights nor the selection metric
NEUTRAL_KEYS = frozenset({"train.threads_per_rank", "train.num_workers", "train.log_every_iters",
                          "train.checkpoint_every_iters", "train.cache_samples",
                          "train.keep_last_predictions"})  # fmt: skip


def training_config(cfg: RunConfig) -> dict:
    """What a training depends on (the resolved config minus the ``evaluation`` section)."""
    data = to_dict(cfg)
    data.pop("evaluation", None)
    return data


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def config_differences(saved: dict, current: dict) -> list[str]:
    """Dotted keys whose values differ (or exist on one side only), neutral keys excepted."""
    a, b = _flatten(saved), _flatten(current)
    return sorted(k for k in set(a) | set(b) if a.get(k, KeyError) != b.get(k, KeyError) and k not in NEUTRAL_KEYS)


def load_resumable(run_dir: str | Path, cfg: RunConfig, world_size: int, restart: bool) -> dict | None:
    """The saved state to resume from, None for a fresh start (no state, or ``restart``)."""
    state = ckpt.load_state(run_dir)
    if state is None or restart:
        return None
    saved = dict(state.get("config") or {})
    saved.pop("evaluation", None)
    differing = config_differences(saved, training_config(cfg))
    if differing:
        shown = ", ".join(differing[:8]) + (f" (+{len(differing) - 8} more)" if len(differing) > 8 else "")
        raise HqmError(f"{ckpt.state_path(run_dir)}: saved under another configuration (differs in {shown}); "
                       "restore it, or pass --restart to discard the saved state and train afresh")
    if state["world_size"] != world_size:
        raise HqmError(f"{ckpt.state_path(run_dir)}: saved with world size {state['world_size']}, "
                       f"resumed with {world_size}; resume with the same --nproc (and --nnodes)")
    return state
