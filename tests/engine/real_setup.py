"""A tiny real run: the synthetic generator's HICO-DET layout and a very small QPIC / HQM model."""

from __future__ import annotations

from pathlib import Path

from hqm.config import (
    AugmentConfig,
    DatasetConfig,
    EvalConfig,
    ModelConfig,
    RunConfig,
    SyntheticConfig,
    TrainConfig,
)  # fmt: skip


def make_dataset(root: Path, num_train: int = 8, num_test: int = 4) -> Path:
    from hqm.data.synthetic import make_synthetic

    if not (root / "annotations").is_dir():
        make_synthetic(SyntheticConfig(seed=0, num_train=num_train, num_test=num_test, image_size=96,
                                       max_people=1, max_objects=1), "hico", root)
    return root


def tiny_config(root: Path, method: str = "qpic", **train_kw) -> RunConfig:
    train = dict(epochs=2, lr_drop=1, global_batch_size=4, micro_batch_size=2, num_workers=0,
                 threads_per_rank=1, checkpoint_every_iters=1, eval_every_epochs=0)
    train.update(train_kw)
    model = ModelConfig(backbone="resnet18", hidden_dim=16, nheads=2, enc_layers=1, dec_layers=2,
                        dim_feedforward=32, dropout=0.0, num_queries=6)
    augment = AugmentConfig(scales=[64, 72], max_size=96, crop_resize_scales=[48, 56], crop_min_size=40,
                            crop_max_size=64, test_scale=64, max_boxes=20)
    return RunConfig(dataset_name="synthetic_hico", dataset=DatasetConfig(format="hico", root=str(root)),
                     variant=method, method=method, seed=42, model=model, augment=augment,
                     train=TrainConfig(**train),
                     evaluation=EvalConfig(hico_protocols=["qpic"], hico_settings=["default"], batch_size=2))
