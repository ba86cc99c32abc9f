import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CI_OVERLAY = REPO / "tests/pipeline/ci_overlay.yaml"


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def params_data():
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def tool_env():
    """Environment for the drivers: the venv's hqm/snakemake/dvc first on PATH, one thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO / "src"), env.get("PYTHONPATH"))))
    return env


@pytest.fixture
def fake_hqm_env(tool_env, tmp_path):
    """tool_env with tests/pipeline/fake_hqm.py as `hqm` (its argv log: env["FAKE_HQM_LOG"])."""
    bin_dir = tmp_path / "fake_bin"
    bin_dir.mkdir()
    script = bin_dir / "hqm"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "tests/pipeline/fake_hqm.py"}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = dict(tool_env, FAKE_HQM_LOG=str(tmp_path / "hqm_calls.jsonl"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env
