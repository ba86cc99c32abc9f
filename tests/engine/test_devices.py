"""Local GPU claims (flock files, HQM_FAKE_GPU_COUNT) and their hand-over to the ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

import hqm.engine.distributed as distributed
from hqm.engine.devices import claim_gpus, visible_gpus
from hqm.errors import HqmError

HOLD = """
import sys
from hqm.engine.devices import claim_gpus
with claim_gpus(int(sys.argv[1])) as gpus:
    print(",".join(gpus), flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def gpu_env(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("HQM_FAKE_GPU_COUNT", "4")
    monkeypatch.setenv("HQM_GPU_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


def _holder(count: int) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip().split(",")


def test_concurrent_claims_get_disjoint_ids(gpu_env):
    proc, theirs = _holder(2)
    try:
        assert theirs == ["0", "1"]
        with claim_gpus(2) as mine:
            assert mine == ["2", "3"]
            lock_text = (gpu_env / "gpu2.lock").read_text().split()
            assert lock_text[0] == str(os.getpid())
            with pytest.raises(HqmError, match=r"--claim-gpus: 1 GPU\(s\) not free after 0 s"):
                with claim_gpus(1, poll_s=0.05, timeout_s=0.0):
                    pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with claim_gpus(4) as everything:  # all released, by the holder's exit and by our block
        assert everything == ["0", "1", "2", "3"]


def test_a_claim_waits_with_one_message_until_gpus_are_freed(gpu_env, capsys):
    proc, _ = _holder(3)
    releaser = threading.Timer(1.5, proc.stdin.close)
    releaser.start()
    start = time.monotonic()
    with claim_gpus(2, poll_s=0.1, timeout_s=60) as gpus:
        waited = time.monotonic() - start
    proc.wait(timeout=30)
    assert waited >= 1.0 and len(gpus) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"hqm: waiting for 2 free GPU(s): 3 of 4 are in use by other runs (locks in {gpu_env})"]


def test_visible_ids_follow_cuda_visible_devices_and_counts_are_checked(gpu_env, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpus() == ["3", "5"]
    with claim_gpus(1) as first, claim_gpus(1) as second:
        assert (first, second) == (["3"], ["5"])
    with pytest.raises(HqmError, match=r"--claim-gpus: 3 GPU\(s\) wanted, 2 visible \(3,5\)"):
        with claim_gpus(3):
            pass
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("HQM_FAKE_GPU_COUNT", "two")
    with pytest.raises(HqmError, match="HQM_FAKE_GPU_COUNT='two'"):
        visible_gpus()


def test_launch_pins_the_ranks_to_the_claimed_gpus(gpu_env, monkeypatch):
    seen = {}

    def fake_supervised(cmd, env, grace_s=30.0):
        seen.update(cmd=cmd, cvd=env["CUDA_VISIBLE_DEVICES"])
        with pytest.raises(HqmError):  # held while the ranks run
            with claim_gpus(3, timeout_s=0.0):
                pass
        return 0

    monkeypatch.setattr(distributed, "run_supervised", fake_supervised)
    with claim_gpus(1):  # someone else holds GPU 0
        assert distributed.launch_torchrun(2, ["train", "--out", "x"], claim_gpus=True) == 0
    assert seen["cvd"] == "1,2" and "--nproc-per-node=2" in seen["cmd"]
    with claim_gpus(4):
        pass  # released after the launch


def test_inside_a_slurm_job_the_gres_allocation_pins_the_gpus_not_a_claim(gpu_env, monkeypatch):
    seen = {}

    def fake_supervised(cmd, env, grace_s=30.0):
        seen["cvd"] = env.get("CUDA_VISIBLE_DEVICES")
        return 0

    monkeypatch.setattr(distributed, "run_supervised", fake_supervised)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,7")  # what SLURM set for the job's gres
    with claim_gpus(2):  # every visible id is held locally: a claim would have to wait
        assert distributed.launch_torchrun(2, ["train", "--out", "x"], claim_gpus=True) == 0
    assert seen["cvd"] == "6,7"
