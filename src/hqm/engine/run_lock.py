"""One writer per run folder: an advisory ``flock`` on ``RUN/.lock`` held for the whole training.

Two ``hqm train`` into the same ``--out`` would interleave their checkpoints, logs and state; the
second one stops at once with a one-line error naming the holder (pid and host, written into the
lock file). The lock dies with its holder (the kernel drops a ``flock`` when the process exits,
even on SIGKILL), so a crashed run never leaves a stale lock behind.

Processes started by the holder (torchrun and its ranks) inherit ``HQM_RUN_LOCK`` naming the
folder, and enter the context without locking again. The lock file is never deleted: removing it
while another process has it open would let two writers lock two different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from hqm.errors import HqmError

LOCK_NAME = ".lock"
HELD_ENV = "HQM_RUN_LOCK"  # the folder locked by an ancestor process


def _holder(handle) -> str:
    handle.seek(0)
    words = handle.read(200).split()
    if len(words) >= 2:
        return f"pid {words[0]} on {words[1]}"
    return "another process"


@contextlib.contextmanager
def locked_run_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create ``path`` if needed and hold its lock until the block ends.

    Raises :class:`HqmError` ``"RUN: locked by pid P on HOST (another training writes here)"``
    when another process holds it. Yields the folder.
    """
    run_dir = Path(path)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = str(run_dir.resolve())
    if os.environ.get(HELD_ENV) == key:  # our parent holds it: we are one of its ranks
        yield run_dir
        return
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HqmError(f"{run_dir}: locked by {_holder(handle)} (another training writes here)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {socket.gethostname()}\n")
        handle.flush()
        previous = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = key
        try:
            yield run_dir
        finally:
            if previous is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = previous
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_outputs_distinct(inputs: dict[str, str | os.PathLike | None],
                           outputs: dict[str, str | os.PathLike | None]) -> None:
    """Refuse an output path that names an input (``--out`` = ``--checkpoint`` would overwrite it).

    Both map an option name (``--out``) to its path; None entries are skipped.
    """
    seen = {}
    for option, path in inputs.items():
        if path is not None:
            seen[os.path.realpath(path)] = option
    for option, path in outputs.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise HqmError(f"{path}: {option} names the same file as {seen[real]}; "
                           f"choose another {option} path")
        seen[real] = option
