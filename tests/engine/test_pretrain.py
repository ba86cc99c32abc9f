"""hqm pretrain-detr: DETR targets, a deterministic loop that learns, a file convert-weights reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from real_setup import make_dataset

from hqm.cli import main
from hqm.config import (
    AugmentConfig,
    DatasetConfig,
    ModelConfig,
    PretrainConfig,
    PretrainSettings,
    load_pretrain_settings,
)
from hqm.data import classes
from hqm.data.annotations import read_split
from hqm.data.datasets import DetectionDataset, dataset_meta
from hqm.data.layout import dataset_layout
from hqm.data.transforms import build_test_transform
from hqm.engine.checkpoint import load_initial_weights
from hqm.engine.pretrain import pretrain_detr, write_pretrained
from hqm.errors import HqmError
from hqm.models.build import build_qpic

REPO = Path(__file__).resolve().parents[2]
MODEL = ModelConfig(backbone="resnet18", hidden_dim=16, nheads=2, enc_layers=1, dec_layers=2,
                    dim_feedforward=32, dropout=0.0, num_queries=6, backbone_norm="batch",
                    backbone_out_stage="layer2")  # fmt: skip
AUGMENT = AugmentConfig(policy="none", test_scale=64, max_size=96, max_boxes=20)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("pretrain") / "synthetic_hico", num_train=6, num_test=2)


def _params(root: Path, **pretrain) -> PretrainSettings:
    cfg = {"epochs": 2, "batch_size": 2, "threads": 1, "warmup_epochs": 0.0, **pretrain}
    return PretrainSettings(PretrainConfig(**cfg), MODEL, AUGMENT, DatasetConfig("hico", str(root)))


def test_detection_targets_are_every_annotated_box_with_its_coco_id(root):
    meta = dataset_meta(DatasetConfig("hico", str(root)))
    data = DetectionDataset(meta, "train", build_test_transform(AUGMENT))
    records = read_split(dataset_layout("hico", root), "train", meta.correct_mat)
    for index, rec in enumerate(records):
        _, target = data[index]
        assert target["labels"].tolist() == [classes.VALID_COCO_IDS[i] for i in rec.labels]
        xyxy = torch.as_tensor(rec.boxes, dtype=torch.float32)
        expected = torch.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2,
                                xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], -1)
        expected = expected / torch.tensor([target["orig_size"][1], target["orig_size"][0]] * 2)
        assert torch.allclose(target["boxes"], expected, atol=1e-5), index


def test_pretraining_is_deterministic_and_learns(root):
    state_a, records_a = pretrain_detr(_params(root, epochs=20, lr=2e-3, lr_backbone=2e-3, clip_max_norm=0.0), show_progress=False)
    state_b, records_b = pretrain_detr(_params(root, epochs=20, lr=2e-3, lr_backbone=2e-3, clip_max_norm=0.0), show_progress=False)
    assert records_a[-1]["loss"] == records_b[-1]["loss"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert records_a[-1]["loss"] < 0.6 * records_a[0]["loss"], [r["loss"] for r in records_a]
    assert records_a[0]["lr"] == 2e-3 and records_a[-1]["lr"] < 1e-4  # cosine, no warm-up
    other, _ = pretrain_detr(_params(root, epochs=1, seed=1), show_progress=False)
    first, _ = pretrain_detr(_params(root, epochs=1), show_progress=False)
    assert not torch.equal(other["query_embed.weight"], first["query_embed.weight"])


def test_the_written_file_converts_and_loads_into_qpic(root, tmp_path):
    params = _params(root, epochs=1)
    state, records = pretrain_detr(params, show_progress=False)
    out = tmp_path / "weights" / "detr_synthetic.pth"
    record = write_pretrained(out, state, records, params)
    assert json.loads(Path(f"{out}.json").read_text())["sha256"] == record["sha256"]
    assert not list(out.parent.glob(".*tmp"))  # written by rename
    converted = tmp_path / "weights" / "hico_qpic.pth"
    assert main(["convert-weights", "--detr", str(out), "--dataset-format", "hico", "--out", str(converted)]) == 0
    qpic = build_qpic(MODEL, 80, 117)
    assert sorted(load_initial_weights(qpic, converted)) == ["verb_class_embed.bias", "verb_class_embed.weight"]
    assert torch.equal(qpic.query_embed.weight, state["query_embed.weight"])
    person_row = classes.VALID_COCO_IDS.index(1)
    assert torch.equal(qpic.obj_class_embed.weight[person_row], state["class_embed.weight"][1])


def test_bad_settings_are_one_line_errors(root):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert load_pretrain_settings(params, "params.yaml").pretrain.dataset == "synthetic_hico"
    params["pretrain"]["dataset"] = "nope"
    with pytest.raises(HqmError, match="params.yaml: pretrain.dataset: 'nope' is not a key of datasets"):
        load_pretrain_settings(params, "params.yaml")
    del params["pretrain"]["eos_coef"]
    with pytest.raises(HqmError, match="pretrain.eos_coef: missing"):
        load_pretrain_settings(params, "params.yaml")
    with pytest.raises(HqmError, match="pretrain.epochs: 0"):
        pretrain_detr(_params(root, epochs=0), show_progress=False)
