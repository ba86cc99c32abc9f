"""Shared fixtures of the evaluation tests: paths of tests/fixtures and tiny GT builders."""

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HICO = FIXTURES / "hico_eval"
VCOCO = FIXTURES / "vcoco_eval"


def _require(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"evaluation fixtures not found at {path} (they ship with the repository)")
    return path


@pytest.fixture(scope="session")
def hico_dir() -> Path:
    return _require(HICO)


@pytest.fixture(scope="session")
def vcoco_dir() -> Path:
    return _require(VCOCO)


def box(*xyxy) -> np.ndarray:
    return np.asarray(xyxy, dtype=np.float64)
