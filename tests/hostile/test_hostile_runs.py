"""Hostile checkpoints, training states and run folders for ``hqm train / evaluate / convert-weights``."""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import random
import sys
from pathlib import Path, PurePosixPath

import pytest
import torch
from hostile_harness import Case, check_case, parametrize

from hqm.config import load_run_config, save_run_config, to_dict
from hqm.engine.checkpoint import save_checkpoint, save_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from real_setup import make_dataset, tiny_config  # noqa: E402

_HELD: list = []  # lock handles this test process holds while a case runs


class _RunsCode:
    """Unpickling this object runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _config(tmp: Path) -> Path:
    path = tmp / "run_config.yaml"
    save_run_config(tiny_config(Path(os.environ["HQM_TEST_HOSTILE_DATA"])), path)
    return path


def _random_bytes(tmp: Path) -> None:
    (tmp / "ckpt.pth").write_bytes(random.Random(1).randbytes(20000))  # seeded: same error path every run


def _truncated(tmp: Path) -> None:
    save_checkpoint(tmp / "whole.pth", {"w": torch.randn(64, 64)}, {"seed": 1}, 1)
    data = (tmp / "whole.pth").read_bytes()
    (tmp / "ckpt.pth").write_bytes(data[: len(data) // 2])


def _pickled_code(tmp: Path) -> None:
    torch.save({"model": {"w": torch.zeros(1)}, "args": _RunsCode(tmp / "ran")}, tmp / "ckpt.pth")


def _released_with_args(tmp: Path) -> None:
    """Like a released QPIC file (argparse Namespace inside), but with the wrong weights."""
    torch.save({"model": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=1e-4, dataset_file="hico")},
               tmp / "ckpt.pth")


def _foreign_but_harmless(tmp: Path) -> None:
    torch.save({"model": {"w": torch.zeros(1)}, "where": PurePosixPath("/x")}, tmp / "ckpt.pth")


def _a_list(tmp: Path) -> None:
    torch.save([torch.zeros(1)], tmp / "ckpt.pth")


def _state_bytes(tmp: Path) -> None:
    _config(tmp)
    (tmp / "run" / "state").mkdir(parents=True)
    (tmp / "run" / "state" / "last.pth").write_bytes(random.Random(2).randbytes(5000))


def _state_of_one_rank(tmp: Path) -> None:
    cfg = load_run_config(_config(tmp))
    save_state(tmp / "run", {"world_size": 1, "config": to_dict(cfg), "epoch": 1, "step": 0})


def _locked(tmp: Path) -> None:
    _config(tmp)
    (tmp / "run").mkdir()
    handle = open(tmp / "run" / ".lock", "a+")  # noqa: SIM115 - held until the case ends
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(f"{os.getpid()} testhost\n")
    handle.flush()
    _HELD.append(handle)


def _parent_is_file(tmp: Path) -> None:
    _config(tmp)
    (tmp / "afile").write_text("not a folder")


EVAL = ("evaluate", "--checkpoint", "{tmp}/ckpt.pth", "--dataset-root", "{tmp}/data", "--format", "hico",
        "--out", "{tmp}/metrics.json", "--device", "cpu")
TRAIN = ("train", "--config", "{tmp}/run_config.yaml", "--out", "{tmp}/run", "--device", "cpu")
RUN_OUTPUTS = ("run/config.yaml", "run/checkpoint.pth", "run/log.jsonl", "run/metrics.json")

CASES = [
    Case("eval_random_bytes", _random_bytes, EVAL, ("{tmp}/ckpt.pth: not a readable PyTorch checkpoint",),
         ("metrics.json",)),
    Case("eval_truncated", _truncated, EVAL, ("{tmp}/ckpt.pth: not a", "PyTorch checkpoint"), ("metrics.json",)),
    Case("eval_pickled_code", _pickled_code, EVAL,
         ("{tmp}/ckpt.pth: checkpoint pickles a posix.system object", "--unsafe-pickle"), ("metrics.json", "ran")),
    # the allow-listed Namespace loads without --unsafe-pickle: the weights are what is refused
    Case("eval_released_namespace_is_safe", _released_with_args, (*EVAL, "--released", "qpic"),
         ("{tmp}/ckpt.pth: state dict does not match the model; missing:",), ("metrics.json",)),
    Case("eval_unsafe_pickle_is_passed_on", _foreign_but_harmless, (*EVAL, "--released", "hqm", "--unsafe-pickle"),
         ("{tmp}/ckpt.pth: state dict does not match the model; missing:",), ("metrics.json",)),
    Case("eval_not_a_dict", _a_list, EVAL, ("{tmp}/ckpt.pth: expected a checkpoint dict, got list",),
         ("metrics.json",)),
    Case("eval_out_is_the_checkpoint", _truncated, tuple(a.replace("metrics.json", "ckpt.pth") for a in EVAL),
         ("{tmp}/ckpt.pth: --out names the same file as --checkpoint",)),
    Case("convert_pickled_code", _pickled_code,
         ("convert-weights", "--detr", "{tmp}/ckpt.pth", "--out", "{tmp}/w.pth", "--dataset-format", "hico"),
         ("{tmp}/ckpt.pth: checkpoint pickles a posix.system object", "--unsafe-pickle"),
         ("w.pth", "w.pth.json", "ran")),
    Case("train_state_random_bytes", _state_bytes, TRAIN,
         ("{tmp}/run/state/last.pth: not a readable PyTorch training state", "delete {tmp}/run/state"), RUN_OUTPUTS),
    Case("train_state_other_world_size", _state_of_one_rank, (*TRAIN, "--nproc", "2"),
         ("{tmp}/run/state/last.pth: saved with world size 1, resumed with 2",), RUN_OUTPUTS),
    Case("train_locked_folder", _locked, TRAIN,
         ("{tmp}/run: locked by pid", "on testhost (another training writes here)"), RUN_OUTPUTS),
    Case("train_out_parent_is_a_file", _parent_is_file, (*TRAIN[:4], "{tmp}/afile/run", *TRAIN[5:]),
         ("{tmp}/afile",), ("afile/run",), rc=1),
    Case("train_out_read_only", _config, (*TRAIN[:4], "/sys/hqm-hostile-run", *TRAIN[5:]),
         ("/sys/hqm-hostile-run",), rc=1),
    Case("train_nnodes_without_slurm", _config, (*TRAIN, "--nnodes", "2"),
         ("--nnodes 2: needs a SLURM allocation",), RUN_OUTPUTS, env={"SLURM_JOB_ID": "", "SLURM_JOB_NODELIST": ""}),
    Case("train_claim_more_gpus_than_visible", _config, (*TRAIN, "--nproc", "2", "--claim-gpus"),
         ("--claim-gpus: 2 GPU(s) wanted, 1 visible",), RUN_OUTPUTS, env={"CUDA_VISIBLE_DEVICES": "0"}),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("hostile_runs") / "data")
    os.environ["HQM_TEST_HOSTILE_DATA"] = str(root)
    yield root
    os.environ.pop("HQM_TEST_HOSTILE_DATA", None)


@parametrize(CASES)
def test_hostile_run(case: Case, tmp_path: Path, dataset: Path):
    os.symlink(dataset, tmp_path / "data")  # a symlink: not snapshotted as an input of the case
    try:
        check_case(dataclasses.replace(case, env={"HQM_RUN_LOCK": "", **case.env}), tmp_path)
    finally:
        while _HELD:
            _HELD.pop().close()
