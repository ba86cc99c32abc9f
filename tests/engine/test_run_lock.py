"""Run-folder locks: one writer per folder, across processes; ranks of the holder pass through."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hqm.engine.run_lock import HELD_ENV, LOCK_NAME, check_outputs_distinct, locked_run_dir
from hqm.errors import HqmError

HOLD = """
import sys
from hqm.engine.run_lock import locked_run_dir
with locked_run_dir(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def _holder(run_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != HELD_ENV}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_while_the_first_holds_the_folder(tmp_path):
    run_dir = tmp_path / "runs" / "seed1"
    proc = _holder(run_dir)
    try:
        with pytest.raises(HqmError) as info:
            with locked_run_dir(run_dir):
                pytest.fail("entered a locked folder")
        assert str(info.value) == (f"{run_dir}: locked by pid {proc.pid} on {socket.gethostname()} "
                                   "(another training writes here)")
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    with locked_run_dir(run_dir) as held:  # released with its holder
        assert held == run_dir
        assert (run_dir / LOCK_NAME).read_text().split() == [str(os.getpid()), socket.gethostname()]
    assert (run_dir / LOCK_NAME).read_text() == ""  # holder cleared on release


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = _holder(tmp_path)
    proc.kill()
    proc.wait()
    with locked_run_dir(tmp_path):
        pass


def test_the_holders_ranks_inherit_the_lock_and_others_do_not(tmp_path, monkeypatch):
    with locked_run_dir(tmp_path):
        assert os.environ[HELD_ENV] == str(tmp_path.resolve())
        child = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path)], input="", capture_output=True,
                               text=True, timeout=60)
        assert child.returncode == 0 and child.stdout.strip() == "held"  # torchrun's ranks get through
        monkeypatch.delenv(HELD_ENV)
        other = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path)], input="", capture_output=True,
                               text=True, timeout=60)
        assert other.returncode != 0 and "locked by pid" in other.stderr
    assert HELD_ENV not in os.environ


def test_an_output_naming_an_input_is_refused(tmp_path):
    (tmp_path / "c.pth").write_bytes(b"x")
    check_outputs_distinct({"--checkpoint": tmp_path / "c.pth"}, {"--out": tmp_path / "m.json", "--x": None})
    with pytest.raises(HqmError, match=r"c.pth: --out names the same file as --checkpoint"):
        check_outputs_distinct({"--checkpoint": tmp_path / "c.pth"}, {"--out": tmp_path / "." / "c.pth"})
    with pytest.raises(HqmError, match="--vcoco-pickle names the same file as --out"):
        check_outputs_distinct({}, {"--out": tmp_path / "a", "--vcoco-pickle": tmp_path / "a"})
