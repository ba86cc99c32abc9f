"""Threads of a process given none (``hqm evaluate``): the scheduler's OMP_NUM_THREADS outside
torchrun, the node's cores divided by its ranks otherwise."""

from __future__ import annotations

import os

import torch

from hqm.engine.distributed import build_dist_env, default_threads


def test_a_schedulers_thread_count_is_honoured_outside_torchrun(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads(1) == cores and default_threads(cores * 2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Snakemake exports for a 1-thread job
    assert default_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads(1) == 3
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # torchrun exports 1 to every worker: divide the cores
    assert default_threads(1) == cores


def test_build_dist_env_sets_the_thread_count(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        build_dist_env("cpu")
        assert torch.get_num_threads() == 1
        build_dist_env("cpu", 2)  # an explicit count wins (training's threads_per_rank)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
