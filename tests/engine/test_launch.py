"""Launching ranks: SLURM multi-node command lines, and no rank outliving ``hqm`` after a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hqm.engine.devices import parse_nodelist, slurm_hosts
from hqm.engine.distributed import torchrun_command
from hqm.errors import HqmError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


# ---------------------------------------------------------------------------------------------
# Node lists and command lines
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nodelist", "hosts"), [
    ("node[01-02],other", ["node01", "node02", "other"]),
    ("gpu[8-10,3]", ["gpu8", "gpu9", "gpu10", "gpu3"]),
    ("n[098-100]", ["n098", "n099", "n100"]),
    ("rack[1-2]-n[07-08]", ["rack1-n07", "rack1-n08", "rack2-n07", "rack2-n08"]),
    ("a,b[1],c", ["a", "b1", "c"]),
    ("login", ["login"]),
])  # fmt: skip
def test_simple_slurm_nodelists_expand(nodelist, hosts):
    assert parse_nodelist(nodelist) == hosts


@pytest.mark.parametrize("bad", ["node[01-", "node[3-1]", "node[a-b]", "x]", ""])
def test_bad_nodelists_are_one_line_errors(bad):
    with pytest.raises(HqmError, match="SLURM_JOB_NODELIST"):
        parse_nodelist(bad)


SLURM = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[07-08]", "PATH": "/nonexistent"}


def test_multi_node_runs_srun_and_torchrun_with_a_c10d_rendezvous(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the node list is parsed here
    cmd = torchrun_command(4, ["train", "--out", "r"], nnodes=2, environ=SLURM)
    assert cmd == [
        "srun", "--overlap", "--nodes", "2", "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "4",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "gpu07:29400", "--rdzv-id", "4242",
        "-m", "hqm.cli", "train", "--out", "r",
    ]  # fmt: skip
    port = torchrun_command(1, ["x"], 2, {**SLURM, "HQM_RDZV_PORT": "3100"})
    assert port[port.index("--rdzv-endpoint") + 1] == "gpu07:3100"
    single = torchrun_command(3, ["evaluate"], 1, {})
    assert single == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3",
                      "-m", "hqm.cli", "evaluate"]


def test_scontrol_is_asked_when_installed(tmp_path, monkeypatch):
    fake = tmp_path / "scontrol"
    fake.write_text("#!/bin/sh\n[ \"$1 $2 $3\" = 'show hostnames weird-list' ] && printf 'h1\\nh2\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert slurm_hosts("weird-list") == ["h1", "h2"]
    assert slurm_hosts("n[1-2]") == ["n1", "n2"]  # scontrol failed: parsed here


def test_multi_node_without_slurm_or_with_too_few_nodes_is_refused(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HqmError, match=r"--nnodes 2: needs a SLURM allocation"):
        torchrun_command(1, ["train"], 2, {})
    with pytest.raises(HqmError, match=r"--nnodes 3: the SLURM allocation 4242 has 2 node\(s\)"):
        torchrun_command(1, ["train"], 3, SLURM)
    with pytest.raises(HqmError, match="--nproc: must be at least 1"):
        torchrun_command(0, ["train"], 1, {})


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found.setdefault(int(fields[1]), []).append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.append(pid)
    return living


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


# A stand-in for torchrun: starts a "worker" in a new session (as torchrun does), both sleep.
AGENT = """
import subprocess, sys, time
worker = ("from hqm.engine.distributed import die_with_parent; import signal, time; "
          "die_with_parent(signal.SIGKILL); time.sleep(600)")
subprocess.Popen([sys.executable, "-c", worker], start_new_session=True)
time.sleep(600)
"""
SUPERVISOR = """
import os, sys
from hqm.engine.distributed import run_supervised
sys.exit(run_supervised([sys.executable, "-c", sys.argv[1]], os.environ, grace_s=float(sys.argv[2])))
"""


def _supervise(grace: float = 30.0) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, AGENT, str(grace)], start_new_session=True)
    tree = wait_for(lambda: (d := descendants(proc.pid)) and len(d) >= 2 and d, 60, "agent and worker")
    return proc, tree


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_supervisor_reaches_every_process(sig, rc):
    proc, tree = _supervise()
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=30) == rc
    wait_for(lambda: not alive(tree), 10, f"{alive(tree)} to exit")


def test_a_killed_supervisor_takes_agent_and_workers_with_it():
    proc, tree = _supervise()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    wait_for(lambda: not alive(tree), 10, f"{alive(tree)} to exit")


def test_an_agent_ignoring_sigterm_is_killed_after_the_grace_period():
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, stubborn, "1.0"], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "up"
    tree = descendants(proc.pid)
    start = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert time.monotonic() - start >= 0.9 and not alive(tree)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_signal_to_hqm_train_nproc_2_ends_every_rank(tmp_path, sig, rc):
    """A real 2-rank gloo training on tiny synthetic data: SIGTERM or SIGKILL to ``hqm train``
    (not to its process group) ends torchrun and both ranks within seconds."""
    from real_setup import make_dataset, tiny_config

    from hqm.config import save_run_config

    root = make_dataset(tmp_path / "data")
    save_run_config(tiny_config(root, epochs=1000), tmp_path / "run_config.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "hqm.cli", "train", "--config", str(tmp_path / "run_config.yaml"),
                             "--out", str(tmp_path / "run"), "--nproc", "2", "--device", "cpu"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:  # both ranks training: the state is saved every step
        wait_for(lambda: (tmp_path / "run" / "state" / "last.pth").is_file(), 300, "the first step")
        tree = descendants(proc.pid)
        assert len(tree) >= 3, tree  # torchrun + 2 ranks
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == rc, out
        wait_for(lambda: not alive(tree), 10, f"{alive(tree)} to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
