"""Checkpoint files: one module, weights-only reading, training state without pickled objects."""

from __future__ import annotations

import ast
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import hqm.models.weights
from hqm.engine import checkpoint as ckpt
from hqm.errors import HqmError


class _RunsCode:
    """Unpickling this object runs ``touch <marker>`` (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_models_weights_does_no_file_io_and_imports_no_data_io_engine_or_evaluation():
    tree = ast.parse(Path(hqm.models.weights.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    banned = ("hqm.data", "hqm.io", "hqm.engine", "hqm.evaluation", "pickle", "io", "os", "pathlib", "zipfile")
    assert not [m for m in imported if m and m.startswith(banned)], imported
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    assert not calls & {"load", "save", "open", "write_bytes", "read_bytes"}, calls


def test_state_round_trip_is_weights_only_and_restores_every_rng(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    rng = ckpt.capture_rng()
    history = [{"epoch": 1, "train_loss": np.float64(0.5), "counts": np.arange(3)}]
    ckpt.save_state(tmp_path, {"rng": rng, "history": history, "world_size": 1, "config": {"a": 1}})
    expected = _draws()
    # the file is plain: torch's own weights-only loader reads it without any allow-list
    raw = torch.load(ckpt.state_path(tmp_path), weights_only=True)
    assert raw["format"] == ckpt.STATE_FORMAT
    state = ckpt.load_state(tmp_path)
    assert state["history"][0]["train_loss"] == 0.5 and type(state["history"][0]["train_loss"]) is float
    assert torch.equal(state["history"][0]["counts"], torch.arange(3))
    _draws()
    ckpt.restore_rng(state["rng"])
    assert _draws() == expected


def test_state_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    ckpt.state_path(tmp_path).parent.mkdir()
    torch.save({"format": ckpt.STATE_FORMAT, "evil": _RunsCode(marker)}, ckpt.state_path(tmp_path))
    with pytest.raises(HqmError) as info:
        ckpt.load_state(tmp_path)
    message = str(info.value)
    assert "last.pth: training state pickles a posix.system object" in message
    assert f"delete {tmp_path / 'state'} to restart" in message and "unsafe" not in message
    assert not marker.exists()


def test_state_of_an_older_format_or_random_bytes_says_what_to_do(tmp_path):
    ckpt.save_payload(ckpt.state_path(tmp_path), {"format": "hqm_train_state_v1"})
    with pytest.raises(HqmError, match=r"last.pth: not a training state of this version.*delete"):
        ckpt.load_state(tmp_path)
    ckpt.state_path(tmp_path).write_bytes(os.urandom(4096))
    with pytest.raises(HqmError, match=r"last.pth: not a .*PyTorch training state.*delete") as info:
        ckpt.load_state(tmp_path)
    assert "\n" not in str(info.value) and "trusted" not in str(info.value)
    assert ckpt.load_state(tmp_path / "none") is None


def test_random_bytes_and_foreign_objects_as_checkpoint_are_one_line_errors(tmp_path):
    (tmp_path / "noise.pth").write_bytes(os.urandom(10000))
    with pytest.raises(HqmError) as info:
        ckpt.load_checkpoint(tmp_path / "noise.pth")
    assert str(info.value).startswith(f"{tmp_path / 'noise.pth'}: not a ") and "--trusted" not in str(info.value)
    marker = tmp_path / "ran"
    torch.save({"model": {"a": torch.zeros(1)}, "x": _RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(HqmError, match="evil.pth: checkpoint pickles a posix.system object; add --unsafe-pickle"):
        ckpt.load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_trained_checkpoint_and_converted_weights_formats(tmp_path):
    state = {"w": torch.arange(4.0)}
    ckpt.save_checkpoint(tmp_path / "c.pth", state, {"seed": 1}, 3, provenance={"host": "h"})
    saved = torch.load(tmp_path / "c.pth", weights_only=True)
    assert set(saved) == {"model", "config", "epoch", "hqm_version", "provenance"} and saved["epoch"] == 3
    ckpt.save_weights(tmp_path / "w.pth", state, {"source": "detr"})
    assert set(torch.load(tmp_path / "w.pth", weights_only=True)) == {"model", "meta"}
    assert torch.equal(ckpt.load_state_dict_file(tmp_path / "w.pth")["w"], state["w"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pth", "w.pth"]  # no temporary left
