"""Atomic file output and checked file input.

Every artefact is written to a temporary file in the destination folder and renamed into place, so
a crash or a bad input never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hqm.errors import HqmError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs follow the umask
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask (read by setting and restoring it: POSIX offers no plain getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp_dir(final: str | os.PathLike) -> Path:
    """A temporary sibling folder of ``final`` to build into and rename onto it, with umask modes.

    ``tempfile.mkdtemp`` creates 0700, which would leave a renamed output unreadable to the group
    on a shared cluster.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    tmp.chmod(0o777 & ~current_umask())
    return tmp


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically (NaN is refused: metrics must be real numbers)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=indent, allow_nan=False)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file (``.gz`` is decompressed); errors name the file and the position."""
    path = Path(path)
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return json.load(handle)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise HqmError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise HqmError(f"{path}: unreadable ({exc})") from None


def link_folder(link: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make ``link`` a relative symbolic link to the folder ``target`` (idempotent).

    Used to give a dataset root the folder layout the datasets expect (``images/train2015``, …)
    without copying unpacked archives. An existing different file or folder at ``link`` is an error.
    """
    link, target = Path(link), Path(target)
    if not target.is_dir():
        raise HqmError(f"{target}: folder not found (needed for {link})")
    relative = os.path.relpath(target.resolve(), link.parent.resolve())
    if link.is_symlink() and os.readlink(link) == relative:
        return
    if link.exists() or link.is_symlink():
        raise HqmError(f"{link}: already exists and is not a link to {target}; move it away first")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(relative, tmp)
    os.replace(tmp, link)
