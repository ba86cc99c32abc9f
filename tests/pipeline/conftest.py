import os
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


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
    return env
