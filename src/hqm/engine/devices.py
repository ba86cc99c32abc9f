"""Which hosts and GPUs a launch uses: SLURM node lists and local GPU claims.

GPU claims (``hqm train --claim-gpus``): several trainings started side by side on one machine
(Snakemake ``--cores``, two shells) would otherwise all pick GPU 0. Each run takes an exclusive
``flock`` on ``$HQM_GPU_LOCK_DIR/gpu<ID>.lock`` for N free ids, waits (saying so once) while fewer
than N are free, and hands its children ``CUDA_VISIBLE_DEVICES``. The kernel drops the locks when
the process dies, so a killed run frees its GPUs. ``HQM_FAKE_GPU_COUNT`` pretends that many GPUs
exist (tests, and machines where the count must not touch CUDA).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from hqm.errors import HqmError

GPU_LOCK_DIR_ENV = "HQM_GPU_LOCK_DIR"
DEFAULT_GPU_LOCK_DIR = "/tmp/hqm-gpu-locks"
FAKE_GPU_COUNT_ENV = "HQM_FAKE_GPU_COUNT"


# ---------------------------------------------------------------------------------------------
# SLURM hosts
# ---------------------------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets: ``a[1,2],b`` -> ``["a[1,2]", "b"]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise ValueError("unbalanced or nested brackets")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError("unbalanced brackets")
    parts.append(text[start:])
    return parts


def _expand_ranges(body: str) -> list[str]:
    """``01-03,7`` -> ``["01", "02", "03", "7"]`` (zero padding kept from the range's start)."""
    out = []
    for item in body.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", item.strip())
        if not match:
            raise ValueError(f"bad range {item!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        if int(last) < int(first):
            raise ValueError(f"bad range {item!r}")
        out += [str(n).zfill(len(first)) for n in range(int(first), int(last) + 1)]
    return out


def _expand_host(pattern: str) -> list[str]:
    match = re.match(r"^([^\[\]]*)\[([^\[\]]+)\](.*)$", pattern)
    if not match:
        return [pattern]
    prefix, body, rest = match.groups()
    return [prefix + n + tail for n in _expand_ranges(body) for tail in _expand_host(rest)]


def parse_nodelist(nodelist: str) -> list[str]:
    """Expand a SLURM host list (``node[01-02,05],gpu-a[1-2]-x,login``) into host names."""
    try:
        hosts = [h for part in _split_top_level(nodelist.strip()) if part for h in _expand_host(part)]
    except ValueError as exc:
        raise HqmError(f"SLURM_JOB_NODELIST={nodelist!r}: cannot parse the node list ({exc})") from None
    if not hosts:
        raise HqmError(f"SLURM_JOB_NODELIST={nodelist!r}: no hosts")
    return hosts


def slurm_hosts(nodelist: str) -> list[str]:
    """The hosts of a node list: ``scontrol show hostnames`` where SLURM is installed, else parsed here."""
    scontrol = shutil.which("scontrol")
    if scontrol:
        done = subprocess.run([scontrol, "show", "hostnames", nodelist], capture_output=True, text=True,
                              check=False)
        hosts = done.stdout.split()
        if done.returncode == 0 and hosts:
            return hosts
    return parse_nodelist(nodelist)


def slurm_rendezvous(nnodes: int, environ: Mapping[str, str]) -> tuple[str, str]:
    """(first host of the allocation, job id) for a torchrun c10d rendezvous over ``nnodes`` nodes."""
    job_id, nodelist = environ.get("SLURM_JOB_ID"), environ.get("SLURM_JOB_NODELIST")
    if not job_id or not nodelist:
        raise HqmError(f"--nnodes {nnodes}: needs a SLURM allocation (SLURM_JOB_ID and SLURM_JOB_NODELIST "
                       "are not set; run inside sbatch/salloc)")
    hosts = slurm_hosts(nodelist)
    if len(hosts) < nnodes:
        raise HqmError(f"--nnodes {nnodes}: the SLURM allocation {job_id} has {len(hosts)} node(s) "
                       f"({nodelist})")
    return hosts[0], job_id


# ---------------------------------------------------------------------------------------------
# Local GPU claims
# ---------------------------------------------------------------------------------------------


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else 0..count-1."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    fake = environ.get(FAKE_GPU_COUNT_ENV)
    if fake is not None:
        if not fake.isdigit():
            raise HqmError(f"environment: {FAKE_GPU_COUNT_ENV}={fake!r} is not a count")
        return [str(i) for i in range(int(fake))]
    return [str(i) for i in range(torch.cuda.device_count())]


def _try_lock(lock_dir: Path, gpu: str):
    fd = os.open(lock_dir / f"gpu{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {socket.gethostname()}\n")
    handle.flush()
    return handle


def _release(handles: list) -> None:
    for handle in handles:
        with contextlib.suppress(OSError):
            handle.seek(0)
            handle.truncate()
        handle.close()  # closing the last descriptor drops the flock


@contextlib.contextmanager
def claim_gpus(count: int, lock_dir: str | os.PathLike | None = None, poll_s: float = 2.0,
               timeout_s: float | None = None, environ: Mapping[str, str] | None = None) -> Iterator[list[str]]:
    """Hold ``count`` free GPU ids (lowest first) until the block ends; yields them.

    Waits while fewer than ``count`` are free, printing one line on stderr the first time;
    ``timeout_s`` (None: forever) turns a long wait into an HqmError.
    """
    environ = os.environ if environ is None else environ
    gpus = visible_gpus(environ)
    if count < 1 or count > len(gpus):
        raise HqmError(f"--claim-gpus: {count} GPU(s) wanted, {len(gpus)} visible ({','.join(gpus) or 'none'})")
    folder = Path(lock_dir or environ.get(GPU_LOCK_DIR_ENV) or DEFAULT_GPU_LOCK_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    start, told = time.monotonic(), False
    while True:
        held = []
        for gpu in gpus:
            handle = _try_lock(folder, gpu)
            if handle is not None:
                held.append((gpu, handle))
                if len(held) == count:
                    break
        if len(held) == count:
            break
        _release([h for _, h in held])  # all or nothing: two waiting runs must not starve each other
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise HqmError(f"--claim-gpus: {count} GPU(s) not free after {timeout_s:.0f} s (locks in {folder})")
        if not told:
            print(f"hqm: waiting for {count} free GPU(s): {len(gpus) - len(held)} of {len(gpus)} are in use "
                  f"by other runs (locks in {folder})", file=sys.stderr, flush=True)
            told = True
        time.sleep(poll_s)
    try:
        yield [gpu for gpu, _ in held]
    finally:
        _release([h for _, h in held])
