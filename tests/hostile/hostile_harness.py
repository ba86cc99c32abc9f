"""The contract every hostile-input case checks, whatever the area (config, data, checkpoints...).

A case builds its inputs in a fresh folder, runs one ``hqm`` command as a user would (a subprocess),
and asserts what a careful user on a shared machine expects of bad input or a fault:

* a non-zero exit code (2 for bad input, the default);
* exactly one line on stderr, naming the file and the entry at fault, and no traceback;
* no partial output: the paths the command would have written do not exist afterwards;
* inputs untouched: every file present before the command has the same bytes afterwards.

The tables live in ``tests/hostile/test_hostile_<area>.py``; each row is a :class:`Case`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Case:
    """One hostile input or fault. ``argv`` and ``outputs`` may use ``{tmp}`` for the case folder."""

    id: str
    setup: Callable[[Path], None]
    argv: tuple[str, ...]
    message: tuple[str, ...]          # substrings the one-line error must contain
    outputs: tuple[str, ...] = ()     # must not exist afterwards (relative to the case folder)
    rc: int = 2
    mutable: tuple[str, ...] = ()     # inputs the command may legitimately change (e.g. a lock)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0


def _snapshot(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not any(rel.startswith(s) for s in skip):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_hqm(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``hqm ARGV`` in a subprocess with this interpreter (no network, one thread)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "hqm.cli", *argv], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def check_case(case: Case, tmp: Path) -> None:
    """Run ``case`` in ``tmp`` and assert the contract of the module docstring."""
    case.setup(tmp)
    before = _snapshot(tmp, case.mutable)
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    proc = run_hqm(argv, tmp, case.env, case.timeout)
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    context = f"rc={proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == case.rc, context
    assert "Traceback" not in proc.stderr, context
    assert len(err_lines) == 1, context
    for needle in case.message:
        assert needle.replace("{tmp}", str(tmp)) in err_lines[0], f"{needle!r} not in the message\n{context}"
    for out in case.outputs:
        assert not (tmp / out.replace("{tmp}", str(tmp))).exists(), f"partial output {out}\n{context}"
    after = _snapshot(tmp, case.mutable)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"inputs changed: {changed}\n{context}"


def parametrize(cases: list[Case]):
    """``@parametrize(CASES)`` on a test taking ``case``: one test per row, named by its id."""
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    return pytest.mark.parametrize("case", cases, ids=ids)
