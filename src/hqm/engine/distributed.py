"""One process or many: launching torchrun, its environment, process group, threads, collectives.

A run started without torchrun is a world of one and never touches ``torch.distributed``; under
torchrun the backend follows the device (NCCL on CUDA, gloo on CPU). Threads per rank are set here
explicitly, because Snakemake and torchrun both export their own ``OMP_NUM_THREADS``.

Launching (:func:`launch_torchrun`): one node runs ``torchrun --standalone``; ``--nnodes M`` under
SLURM runs ``srun`` with one torchrun per node and a c10d rendezvous on the allocation's first host.
The launcher is a supervisor: torchrun gets its own process group, SIGTERM / SIGINT / SIGHUP sent
to ``hqm`` are forwarded to it (then SIGKILL after a grace period) and ``hqm`` exits 128 + signal;
torchrun dies with ``hqm`` (``PR_SET_PDEATHSIG``) and every rank dies with torchrun, so no rank
survives its launcher to keep writing into the run folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from hqm.engine.devices import claim_gpus as claim_gpus_locally
from hqm.engine.devices import slurm_rendezvous
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


def default_threads(local_world: int) -> int:
    """Threads for a rank that was given none: a scheduler's ``OMP_NUM_THREADS`` outside torchrun,
    else the machine's cores divided by the ranks on this node.

    Snakemake exports ``OMP_NUM_THREADS`` = the job's threads (1 for an evaluation). Taking all
    cores instead put 2 threads beside a 1-thread training on the 2-core demo, and the oversubscribed
    OpenMP pool slowed both jobs several-fold. torchrun exports 1 to every worker whatever the
    cores, so under torchrun the cores are divided instead.
    """
    if "TORCHELASTIC_RUN_ID" not in os.environ and _env_int("OMP_NUM_THREADS", 0) > 0:
        return _env_int("OMP_NUM_THREADS", 0)
    return max(1, (os.cpu_count() or 1) // max(1, local_world))


def build_dist_env(device: str = "auto", threads_per_rank: int = 0) -> DistEnv:
    """Read the torchrun variables, pick the device, set threads, join the process group.

    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``. ``threads_per_rank`` 0 means
    :func:`default_threads`.
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
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a torchrun worker: die with the agent
        die_with_parent(signal.SIGKILL)
    threads = threads_per_rank or default_threads(local_world)
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


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
RDZV_PORT_ENV = "HQM_RDZV_PORT"
DEFAULT_RDZV_PORT = 29400  # torchrun's own c10d default


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return  # best effort: the supervisor's forwarding still applies
    if os.getppid() == 1:  # the parent died before prctl: nobody will ever signal us
        os.kill(os.getpid(), sig)


def needs_launcher(nproc: int, nnodes: int = 1, claim_gpus: bool = False) -> bool:
    """Whether ``hqm train|evaluate`` must start torchrun (and is not a rank of one already)."""
    return (nproc > 1 or nnodes > 1 or claim_gpus) and "WORLD_SIZE" not in os.environ


def torchrun_command(nproc: int, cli_args: list[str], nnodes: int = 1,
                     environ: Mapping[str, str] | None = None) -> list[str]:
    """The command line re-running ``hqm <cli_args>`` on ``nnodes`` x ``nproc`` processes."""
    environ = os.environ if environ is None else environ
    if nproc < 1:
        raise HqmError(f"--nproc: must be at least 1, got {nproc}")
    if nnodes < 1:
        raise HqmError(f"--nnodes: must be at least 1, got {nnodes}")
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    tail = ["-m", "hqm.cli", *cli_args]
    if nnodes == 1:
        return [*torchrun, "--standalone", f"--nproc-per-node={nproc}", *tail]
    host, job_id = slurm_rendezvous(nnodes, environ)
    port = environ.get(RDZV_PORT_ENV, str(DEFAULT_RDZV_PORT))
    return [
        # --overlap: the executor plugin already runs this job inside a step holding the allocation
        "srun", "--overlap", "--nodes", str(nnodes), "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
        *torchrun, "--nnodes", str(nnodes), "--nproc-per-node", str(nproc), "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"{host}:{port}", "--rdzv-id", job_id, *tail,
    ]  # fmt: skip


def run_supervised(cmd: list[str], env: Mapping[str, str], grace_s: float = 30.0) -> int:
    """Run ``cmd`` in its own process group, forwarding SIGTERM/SIGINT/SIGHUP to the whole group.

    Returns the child's exit code, or 128 + the first signal received (143 for SIGTERM, 130 for
    SIGINT) once the group has gone; SIGKILLs the group ``grace_s`` seconds after that signal.
    """
    parent = os.getpid()

    def child_setup() -> None:  # runs in the child between fork and exec
        os.setpgid(0, 0)
        die_with_parent(signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGTERM)

    received: list[tuple[int, float]] = []  # (signal, when)
    procs: list[subprocess.Popen] = []

    def signal_group(signum: int) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signum)

    def forward(signum, _frame) -> None:
        received.append((signum, time.monotonic()))
        signal_group(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        procs.append(subprocess.Popen(cmd, env=dict(env), preexec_fn=child_setup))  # noqa: PLW1509
        if received:  # signalled while starting
            signal_group(received[0][0])
        while True:
            try:
                code = procs[0].wait(timeout=0.5)  # polls: a signal must not leave us blocked
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - received[0][1] > grace_s:
                    signal_group(signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        return 128 + received[0][0]
    return 128 - code if code < 0 else code


def launch_torchrun(nproc: int, cli_args: list[str], nnodes: int = 1, claim_gpus: bool = False) -> int:
    """Re-run ``hqm <cli_args>`` on ``nnodes`` x ``nproc`` ranks under a supervising torchrun.

    ``claim_gpus``: claim ``nproc`` free local GPUs first (:func:`hqm.engine.devices.claim_gpus`)
    and pin the ranks to them with ``CUDA_VISIBLE_DEVICES``; ignored inside a SLURM job, whose
    gres allocation already pins the job's GPUs.
    """
    cmd = torchrun_command(nproc, cli_args, nnodes)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # we set threads per rank ourselves
    if not claim_gpus or "SLURM_JOB_ID" in env:
        return run_supervised(cmd, env)
    with claim_gpus_locally(nproc) as gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        return run_supervised(cmd, env)
