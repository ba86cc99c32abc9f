"""Small synthetic dataset roots shared by the data tests (generated once per session)."""

from __future__ import annotations

import pytest
import torch

from hqm.config import SyntheticConfig
from hqm.data.synthetic import make_synthetic

torch.set_num_threads(1)

TINY = SyntheticConfig(seed=3, num_train=24, num_test=8, image_size=96)


@pytest.fixture(scope="session")
def hico_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "hico"
    make_synthetic(TINY, "hico", root)
    return root


@pytest.fixture(scope="session")
def vcoco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "vcoco"
    make_synthetic(TINY, "vcoco", root)
    return root
