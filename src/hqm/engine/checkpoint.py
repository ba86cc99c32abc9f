"""Every checkpoint file the project reads or writes: one module, safe unpickling by default.

* ``<run_dir>/state/last.pth`` (training state): everything needed to continue bit-for-bit on CPU:
  model, optimiser and scheduler, the position in the data order (epoch, next step), the per-epoch
  history and, per rank, the python/numpy/torch/CUDA RNG states, the detector's own generator
  (``rng_state()``) and the running loss sums of the current epoch. The folder is deliberately not
  declared to Snakemake / DVC, which delete declared outputs of failed jobs.
* trained models (:func:`save_checkpoint`): ``{"model", "config" (plain dict), "epoch",
  "hqm_version", ...}``; converted initial weights (:func:`save_weights`): ``{"model", "meta"}``.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain Python values only,
plus ``argparse.Namespace`` (released DETR / QPIC / HQM files pickle their command line with it).
Anything else is refused with a one-line error unless the caller passes ``unsafe_pickle=True``
(the CLI's ``--unsafe-pickle``), which unpickles arbitrary objects and may run code.
Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hqm import __version__
from hqm.data.classes import DETR_NO_OBJECT_ROW, VALID_COCO_IDS
from hqm.errors import HqmError
from hqm.io import atomic_write
from hqm.models.weights import (
    INIT_MISSING_PREFIXES,
    adapt_layout,
    convert_detr_to_qpic,
    load_state_dict_strict,
    state_dict_of,
)

STATE_FORMAT = "hqm_train_state_v2"  # v2: numpy RNG stored as tensors, readable with weights_only
# classes a weights-only load may rebuild besides tensors and plain values (no code runs for them)
SAFE_GLOBALS = (argparse.Namespace,)
UNSAFE_HINT = "add --unsafe-pickle only if you trust this file (unpickling can run code)"


# ---------------------------------------------------------------------------------------------
# Reading and writing
# ---------------------------------------------------------------------------------------------


def save_payload(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` atomically; ``payload`` must hold only tensors and plain Python values."""
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def save_checkpoint(path: str | os.PathLike, model_state: dict[str, Tensor], config: dict, epoch: int,
                    **extra: Any) -> None:
    """A trained model in the project's checkpoint format (``extra``: more plain entries)."""
    save_payload(path, {"model": model_state, "config": config, "epoch": epoch, "hqm_version": __version__,
                        **extra})


def save_weights(path: str | os.PathLike, model_state: dict[str, Tensor], meta: dict) -> None:
    """Converted initial weights: ``{"model": state_dict, "meta": meta}``."""
    save_payload(path, {"model": model_state, "meta": meta})


def _unsupported_global(exc: Exception) -> str | None:
    """The class or function a weights-only load refused, named in torch's message."""
    text = str(exc)
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", text)
    found = found or re.search(r"but got <class '([\w.]+)'>", text)
    return found.group(1) if found else None


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint", unsafe_pickle: bool = False,
                    hint: str | None = None) -> Any:
    """``torch.load`` on CPU, weights only (see the module docstring); one-line errors for missing,
    truncated, foreign files and files that pickle other objects. ``what`` names the file's role,
    ``hint`` (what the user can do) ends every error instead of the --unsafe-pickle advice."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise HqmError(f"{path}: {what} not found{tail}")
    try:
        if unsafe_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise  # the environment, not the file: the CLI reports OSErrors itself
    except pickle.UnpicklingError as exc:
        name = _unsupported_global(exc)  # None for garbage ("invalid load key", "Unsupported operand")
        if name is None:
            raise HqmError(f"{path}: not a readable PyTorch {what} (foreign or corrupted file){tail}") from None
        raise HqmError(f"{path}: {what} pickles a {name} object; {hint or UNSAFE_HINT}") from None
    except Exception as exc:  # noqa: BLE001 - zip, EOF, unpickling errors of any kind: not readable
        raise HqmError(f"{path}: not a readable PyTorch {what} (truncated or foreign file: "
                       f"{type(exc).__name__}){tail}") from None


def load_checkpoint(path: str | os.PathLike, unsafe_pickle: bool = False) -> dict:
    """A checkpoint container (a dict): ours, converted weights, or a released upstream file."""
    ckpt = read_torch_file(path, "checkpoint", unsafe_pickle)
    if not isinstance(ckpt, dict):
        raise HqmError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


def load_state_dict_file(path: str | os.PathLike, unsafe_pickle: bool = False) -> dict[str, Tensor]:
    """The state dict of a checkpoint file (key ``model``, or the file is the state dict itself)."""
    return state_dict_of(load_checkpoint(path, unsafe_pickle), str(path))


def load_weights(model: nn.Module, path: str | os.PathLike, unsafe_pickle: bool = False,
                 allow_missing_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Load a QPIC, HQM or own checkpoint into ``model`` (layout adapted, then strict).
    Returns the model keys allowed to stay missing that were missing."""
    state = adapt_layout(load_state_dict_file(path, unsafe_pickle), model.state_dict().keys())
    return load_state_dict_strict(model, state, str(path), allow_missing_prefixes)


def load_initial_weights(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a ``hqm convert-weights`` file; only the verb head and GBS encoder may stay fresh."""
    return load_weights(model, path, allow_missing_prefixes=INIT_MISSING_PREFIXES)


def convert_detr_file(path: str | os.PathLike, dataset_format: str, convert_seed: int = 0,
                      unsafe_pickle: bool = False) -> dict[str, Tensor]:
    """DETR COCO checkpoint file -> QPIC-layout initial state dict for ``dataset_format``.

    hico: 81 object rows (the 80 valid COCO ids, then DETR's no-object row 91); vcoco: 82, with a
    seeded "missing object" row before the no-object row (method.md §7.3).
    """
    if dataset_format not in ("hico", "vcoco"):
        raise HqmError(f"--dataset-format: unknown dataset format {dataset_format!r}")
    detr = load_state_dict_file(path, unsafe_pickle)
    return convert_detr_to_qpic(detr, [*VALID_COCO_IDS, DETR_NO_OBJECT_ROW],
                                insert_missing_row=dataset_format == "vcoco", convert_seed=convert_seed)


# ---------------------------------------------------------------------------------------------
# Training state
# ---------------------------------------------------------------------------------------------


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "state" / "last.pth"


def _numpy_state_to_plain(state: dict) -> dict:
    """``np.random.get_state(legacy=False)`` with its uint32 key as an int64 tensor."""
    inner = state["state"]
    return {**state, "state": {**inner, "key": torch.from_numpy(np.asarray(inner["key"], dtype=np.int64))}}


def _numpy_state_from_plain(state: dict) -> dict:
    inner = state["state"]
    key = inner["key"].numpy() if torch.is_tensor(inner["key"]) else np.asarray(inner["key"])
    return {**state, "state": {**inner, "key": key.astype(np.uint32)}}


def capture_rng(model: torch.nn.Module | None = None) -> dict[str, Any]:
    """This process's RNG states (and the detector's generator, if it has one), as plain values."""
    out: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state_to_plain(np.random.get_state(legacy=False)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "detector": model.rng_state() if model is not None and hasattr(model, "rng_state") else None,
    }
    return out


def restore_rng(states: dict[str, Any], model: torch.nn.Module | None = None) -> None:
    random.setstate(states["python"])
    np.random.set_state(_numpy_state_from_plain(states["numpy"]))
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if states.get("detector") is not None and model is not None and hasattr(model, "load_rng_state"):
        model.load_rng_state(states["detector"])


def _plain(value: Any) -> Any:
    """numpy scalars / arrays -> Python numbers / tensors, recursively (weights-only loadable)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    return value


def save_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    """Write the resumable state atomically (call on rank 0 only)."""
    save_payload(state_path(run_dir), {"format": STATE_FORMAT, **_plain(state)})


def load_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The saved state, or None when the run has none yet (read weights-only like any file)."""
    path = state_path(run_dir)
    if not path.is_file():
        return None
    state = read_torch_file(path, "training state", hint=f"delete {path.parent} to restart the run")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise HqmError(f"{path}: not a training state of this version ({STATE_FORMAT}); "
                       f"delete {path.parent} to restart the run")
    return state
