"""Deterministic, resumable data order: global batches -> per-rank micro-batches.

The image order of an epoch is a permutation that depends on (seed, epoch) only. Optimiser step
``s`` consumes the global batch ``order[s*G:(s+1)*G]`` (the tail that does not fill a global batch
is dropped); rank ``r`` takes its contiguous ``G / world_size`` slice of it and cuts that into
micro-batches. The images of a step are therefore the same for any world size, which makes 1
process with accumulation and N processes comparable, and a resumed run simply starts at step s.

Every item also carries its own augmentation seed, a function of (seed, epoch, image index), so
the random augmentation an image receives does not depend on worker, rank or resume point.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from hqm.errors import HqmError


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence hashing; stable across versions)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class StepPlan:
    """Which images each rank feeds to each micro-batch of each optimiser step."""

    dataset_size: int
    global_batch_size: int
    micro_batch_size: int
    world_size: int
    rank: int
    seed: int

    def __post_init__(self) -> None:
        per_step = self.world_size * self.micro_batch_size
        if self.global_batch_size % per_step:
            raise HqmError(
                f"train.global_batch_size: {self.global_batch_size} is not divisible by "
                f"world_size {self.world_size} x micro_batch_size {self.micro_batch_size}"
            )
        if self.dataset_size < self.global_batch_size:
            raise HqmError(
                f"train.global_batch_size: {self.global_batch_size} exceeds the {self.dataset_size} "
                "training images (no full batch per epoch)"
            )

    @property
    def accumulation_steps(self) -> int:
        return self.global_batch_size // (self.world_size * self.micro_batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return self.dataset_size // self.global_batch_size  # drop_last

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """Permutation of the dataset for ``epoch``: Long[dataset_size]."""
        gen = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x5A3))
        return torch.randperm(self.dataset_size, generator=gen)

    def sample_seed(self, epoch: int, index: int) -> int:
        return _mix(self.seed, epoch, index, 0xA06)

    def micro_batches(self, epoch: int, step: int, order: torch.Tensor | None = None) -> list[list[tuple[int, int]]]:
        """This rank's micro-batches of ``step``: lists of (image index, augmentation seed)."""
        order = self.epoch_order(epoch) if order is None else order
        per_rank = self.global_batch_size // self.world_size
        start = step * self.global_batch_size + self.rank * per_rank
        mine = order[start : start + per_rank].tolist()
        m = self.micro_batch_size
        return [[(i, self.sample_seed(epoch, i)) for i in mine[k : k + m]] for k in range(0, per_rank, m)]


class MicroBatchSampler:
    """``batch_sampler`` for a DataLoader: this rank's micro-batches from ``start_step`` on."""

    def __init__(self, plan: StepPlan, epoch: int, start_step: int = 0):
        self.plan, self.epoch, self.start_step = plan, epoch, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self.plan.epoch_order(self.epoch)
        for step in range(self.start_step, self.plan.steps_per_epoch):
            yield from self.plan.micro_batches(self.epoch, step, order)

    def __len__(self) -> int:
        return (self.plan.steps_per_epoch - self.start_step) * self.plan.accumulation_steps


class SeededItems(Dataset):
    """Wraps a dataset so item ``(index, seed)`` is drawn with python/numpy/torch seeded by ``seed``.

    The caller's RNG states are restored afterwards, so loading data in the main process does not
    disturb the model's random stream (dropout, GBS, AMM).
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            # the CPU generator only: torch.manual_seed would also reseed (and not restore) the CUDA
            # generators, and its lazy CUDA seeding formats a stack trace per call (~0.8 ms)
            torch.default_generator.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
