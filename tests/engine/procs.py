"""Subprocess helpers shared by the engine tests: start a run, kill it mid-epoch, compare runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from hqm.io import read_json


def start(cmd: list[str], env_extra: dict[str, str] | None = None, wait: bool = True,
          timeout: float = 240) -> subprocess.Popen:
    """Run ``cmd`` with one thread per process, in its own process group (kill -9 reaches
    torchrun's workers too); with ``wait``, assert that it succeeded."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if wait:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out
    return proc


def kill_mid_epoch(proc: subprocess.Popen, run_dir: Path, timeout: float = 200) -> None:
    """SIGKILL the run's process group once its saved state is inside the second epoch."""
    state = Path(run_dir) / "state" / "last.pth"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        saved = torch.load(state, weights_only=False) if state.is_file() else {"epoch": 0, "step": 0}
        if saved["epoch"] >= 1 and saved["step"] >= 1:  # resumes mid-epoch
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (Path(run_dir) / "train_summary.json").exists(), "killed too late to test anything"


def weights(run_dir: Path, name: str = "checkpoint_last.pth") -> dict:
    return torch.load(Path(run_dir) / name, weights_only=True)["model"]


def log_without_times(run_dir: Path) -> list[dict]:
    lines = [json.loads(x) for x in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in x.items() if k not in ("epoch_time", "images_per_s")} for x in lines]


def assert_same_run(a: Path, b: Path) -> None:
    """Identical losses, selection metrics and bit-identical final weights."""
    assert read_json(Path(a) / "train_summary.json")["selection"] == read_json(Path(b) / "train_summary.json")["selection"]
    la, lb = log_without_times(a), log_without_times(b)
    diff = [(x["epoch"], k, x.get(k), y.get(k)) for x, y in zip(la, lb) for k in set(x) | set(y) if x.get(k) != y.get(k)]
    assert len(la) == len(lb) and not diff, diff
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
