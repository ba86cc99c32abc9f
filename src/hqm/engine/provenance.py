"""Where and with what a run was made: code version, libraries, hardware, world (config.yaml,
train_summary.json and metrics JSONs carry it)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

from hqm import __version__

SOURCE_DIR = Path(__file__).resolve().parent


def git_state(where: Path = SOURCE_DIR) -> dict[str, Any]:
    """Commit of the checkout holding the hqm sources and whether tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def torchvision_version() -> str | None:
    """torchvision.__version__ (local build tag included, e.g. ``0.29.1+cu130``) without importing it.

    Importing torchvision costs ~3 s of CPU (it loads torch._dynamo) and hqm no longer needs it;
    its ``version.py`` holds the string. The distribution metadata (no build tag) is the fallback.
    """
    spec = importlib.util.find_spec("torchvision")  # a top-level find_spec imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        if found:
            return found.group(1)
    try:
        return importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    nccl = None
    if cuda and hasattr(torch.cuda, "nccl"):
        try:
            version = torch.cuda.nccl.version()
            nccl = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except (RuntimeError, AttributeError):
            nccl = None
    return {
        "hqm": __version__,
        "torch": str(torch.__version__),
        "torchvision": torchvision_version(),
        "cuda": str(torch.version.cuda) if torch.version.cuda else None,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": nccl,
    }


def hardware() -> dict[str, Any]:
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"gpu_model": torch.cuda.get_device_name(0) if count else None, "gpu_count": count}


def collect(seed: int, world_size: int, hostnames: list[str]) -> dict[str, Any]:
    """Provenance of this process's run; ``hostnames``: every rank's host (nodes = distinct hosts)."""
    return {
        "git": git_state(),
        "versions": library_versions(),
        **hardware(),
        "world_size": world_size,
        "nodes": len(set(hostnames)) or 1,
        "hostname": socket.gethostname(),
        "hostnames": sorted(set(hostnames)),
        "seed": seed,
    }


def this_host() -> str:
    return socket.gethostname()
