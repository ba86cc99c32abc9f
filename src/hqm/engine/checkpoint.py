"""Resumable training state and the final checkpoint, both written atomically.

``<run_dir>/state/last.pth`` holds everything needed to continue bit-for-bit on CPU: model,
optimiser and scheduler, the position in the data order (epoch, next step), the per-epoch history
and, per rank, the python/numpy/torch/CUDA RNG states, the detector's own generator
(``rng_state()``) and the running loss sums of the current epoch. The folder is deliberately not
declared to Snakemake / DVC, which delete declared outputs of failed jobs.

``<run_dir>/checkpoint.pth`` is the final model in the project's format:
``{"model", "config" (plain dict), "epoch", "hqm_version"}``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hqm import __version__
from hqm.errors import HqmError
from hqm.io import atomic_write

STATE_FORMAT = "hqm_train_state_v1"


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "state" / "last.pth"


def capture_rng(model: torch.nn.Module | None = None) -> dict[str, Any]:
    """This process's RNG states (and the detector's generator, if it has one)."""
    out: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "detector": model.rng_state() if model is not None and hasattr(model, "rng_state") else None,
    }
    return out


def restore_rng(states: dict[str, Any], model: torch.nn.Module | None = None) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if states.get("detector") is not None and model is not None and hasattr(model, "load_rng_state"):
        model.load_rng_state(states["detector"])


def _save(obj: Any, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def save_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Write the resumable state atomically (call on rank 0 only)."""
    _save({"format": STATE_FORMAT, **state}, state_path(run_dir))


def load_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The saved state, or None when the run has none yet."""
    path = state_path(run_dir)
    if not path.is_file():
        return None
    try:
        # our own file with RNG tuples and numpy arrays inside: not loadable with weights_only
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a foreign/broken file
        raise HqmError(f"{path}: unreadable training state ({type(exc).__name__}); delete it to restart") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise HqmError(f"{path}: not a training state of this version ({STATE_FORMAT})")
    return state


def save_checkpoint(path: str | Path, model_state: dict[str, torch.Tensor], config: dict, epoch: int) -> None:
    """The final model in the project's checkpoint format."""
    _save({"model": model_state, "config": config, "epoch": epoch, "hqm_version": __version__}, Path(path))
