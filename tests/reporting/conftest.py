"""Shared fixtures: a tiny synthetic dataset and a tiny randomly initialised HQM checkpoint."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_hico(tmp_path_factory):
    from hqm.config import SyntheticConfig
    from hqm.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("data") / "synthetic_hico"
    make_synthetic(SyntheticConfig(seed=0, num_train=4, num_test=4, image_size=96, max_people=2, max_objects=2),
                   "hico", root)
    return root


def tiny_run_config(root, method: str = "hqm"):
    from hqm.config import (
        AugmentConfig,
        DatasetConfig,
        GBSConfig,
        HardQueryConfig,
        ModelConfig,
        RunConfig,
    )

    model = ModelConfig(backbone="resnet18", hidden_dim=16, nheads=2, enc_layers=1, dec_layers=2,
                        dim_feedforward=32, dropout=0.0, num_queries=6, backbone_out_stage="layer3")
    augment = AugmentConfig(test_scale=96, max_size=128)
    hard = HardQueryConfig(gbs=GBSConfig(acceptance_scope="box"))
    return RunConfig(dataset_name="synthetic_hico", dataset=DatasetConfig(format="hico", root=str(root)),
                     variant=method, method=method, seed=0, model=model, augment=augment, hard_queries=hard)


@pytest.fixture(scope="session")
def tiny_checkpoint(synthetic_hico, tmp_path_factory):
    """A randomly initialised HQM detector saved as ``hqm train`` saves checkpoints."""
    import torch

    from hqm.config import to_dict
    from hqm.data.datasets import dataset_meta
    from hqm.engine.checkpoint import save_checkpoint
    from hqm.models.build import build_detector

    cfg = tiny_run_config(synthetic_hico)
    meta = dataset_meta(cfg.dataset)
    torch.manual_seed(0)
    model = build_detector(cfg.model, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes)
    path = tmp_path_factory.mktemp("run") / "checkpoint_last.pth"
    save_checkpoint(path, model.state_dict(), to_dict(cfg), epoch=1)
    return path
