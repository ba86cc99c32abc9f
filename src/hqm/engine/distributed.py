"""One process or many: torchrun environment, process group, threads and collective helpers.

A run started without torchrun is a world of one and never touches ``torch.distributed``; under
torchrun the backend follows the device (NCCL on CUDA, gloo on CPU). Threads per rank are set here
explicitly, because Snakemake and torchrun both export their own ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hqm.errors import HqmError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise HqmError(f"environment: {name}={value!r} is not an integer") from None


def build_dist_env(device: str = "auto", threads_per_rank: int = 0) -> DistEnv:
    """Read the torchrun variables, pick the device, set threads, join the process group.

    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``. ``threads_per_rank`` 0 means
    the machine's cores divided by the ranks on this node.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if device not in ("auto", "cpu", "cuda"):
        raise HqmError(f"device: {device!r} is not one of 'auto', 'cpu', 'cuda'")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise HqmError("device: cuda requested but no CUDA device is visible")
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    threads = threads_per_rank or max(1, (os.cpu_count() or 1) // max(1, local_world))
    torch.set_num_threads(threads)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown(env: DistEnv) -> None:
    """Leave the process group (no barrier: a failed rank must not hang the others)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Sum a list of numbers over ranks (float64, so counts stay exact)."""
    if not env.distributed:
        return [float(v) for v in values]
    dev = env.device if env.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj``, in rank order (a list of one without torchrun)."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, env: DistEnv, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not env.distributed:
        return obj
    box = [obj if env.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def launch_torchrun(nproc: int, cli_args: list[str]) -> int:
    """Re-run ``hqm <cli_args>`` under ``torchrun --standalone --nproc-per-node nproc``."""
    if nproc < 1:
        raise HqmError(f"--nproc: must be at least 1, got {nproc}")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "hqm.cli", *cli_args,
    ]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # we set threads per rank ourselves
    return subprocess.call(cmd, env=env)
