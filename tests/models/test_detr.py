"""DETR (hqm.models.detr): the published key layout, DETR's matching and losses."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from hqm.config import ModelConfig
from hqm.models.box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from hqm.models.build import build_detr, build_qpic
from hqm.models.detr import DetrCriterion, match_boxes
from hqm.models.weights import convert_detr_to_qpic

STATE_DICTS = Path(__file__).resolve().parents[1] / "fixtures" / "state_dicts"
TINY = ModelConfig(backbone="resnet18", hidden_dim=32, nheads=4, enc_layers=1, dec_layers=2,
                   dim_feedforward=64, dropout=0.0, num_queries=6)


def test_paper_size_keys_shapes_and_order_are_the_published_detrs():
    rows = [line.split("\t") for line in (STATE_DICTS / "detr_r50_coco.tsv").read_text().splitlines()[1:]]
    state = build_detr(ModelConfig()).state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, json.loads(shape)) for k, shape in rows]


def test_forward_gives_every_layer_and_converts_into_a_qpic_model():
    torch.manual_seed(0)
    detr = build_detr(TINY).eval()
    out = detr(torch.randn(2, 3, 64, 80), torch.zeros(2, 64, 80, dtype=torch.bool))
    assert out["pred_logits"].shape == (2, 6, 92) and out["pred_boxes"].shape == (2, 6, 4)
    assert len(out["aux_outputs"]) == TINY.dec_layers - 1
    assert ((out["pred_boxes"] > 0) & (out["pred_boxes"] < 1)).all()
    # convert-weights' mapping fills every QPIC tensor except the verb head
    qpic = build_qpic(TINY, 80, 117)
    converted = convert_detr_to_qpic(detr.state_dict(), [*range(1, 81), 91])
    missing, unexpected = qpic.load_state_dict(converted, strict=False)
    assert missing == ["verb_class_embed.weight", "verb_class_embed.bias"] and unexpected == []
    assert torch.equal(qpic.obj_bbox_embed.layers[2].bias, detr.bbox_embed.layers[2].bias)


def _brute_force(outputs, target, costs):
    prob = outputs["pred_logits"][0].softmax(-1)
    boxes = outputs["pred_boxes"][0]
    giou = generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target["boxes"]))
    cost = (-costs[0] * prob[:, target["labels"]] + costs[1] * torch.cdist(boxes, target["boxes"], p=1)
            - costs[2] * giou)
    best = min(itertools.permutations(range(len(boxes)), len(target["labels"])),
               key=lambda rows: sum(cost[r, c] for c, r in enumerate(rows)))
    return sorted((r, c) for c, r in enumerate(best))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matching_is_the_minimum_cost_assignment(seed):
    generator = torch.Generator().manual_seed(seed)
    outputs = {"pred_logits": torch.randn(1, 5, 92, generator=generator),
               "pred_boxes": torch.rand(1, 5, 4, generator=generator) * 0.5 + 0.25}
    target = {"labels": torch.tensor([1, 3, 1]), "boxes": torch.rand(3, 4, generator=generator) * 0.5 + 0.25}
    costs = (1.0, 5.0, 2.0)
    (rows, cols), = match_boxes(outputs, [target], *costs)
    assert sorted(zip(rows.tolist(), cols.tolist())) == _brute_force(outputs, target, costs)


def test_losses_vanish_on_perfect_predictions_and_are_detrs_on_others():
    boxes = torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2]])
    target = {"labels": torch.tensor([1, 2]), "boxes": boxes}
    logits = torch.full((1, 3, 92), -20.0)
    logits[0, 0, 2], logits[0, 1, 91], logits[0, 2, 1] = 20.0, 20.0, 20.0  # query 1: no object
    pred_boxes = torch.stack([boxes[1], torch.tensor([0.5, 0.5, 0.1, 0.1]), boxes[0]])[None]
    criterion = DetrCriterion()
    total, losses = criterion({"pred_logits": logits, "pred_boxes": pred_boxes}, [target])
    assert losses["loss_bbox"] < 1e-6 and losses["loss_giou"] < 1e-6 and losses["loss_ce"] < 1e-6
    # a shifted box: L1 / number of boxes, classes by DETR's weighted mean (no-object weight 0.1)
    shifted = pred_boxes.clone()
    shifted[0, 0, 0] += 0.1
    logits[0, 1] = 0.0  # the unmatched query: uniform, cross-entropy log(92)
    total, losses = criterion({"pred_logits": logits, "pred_boxes": shifted}, [target])
    assert losses["loss_bbox"] == pytest.approx(0.1 / 2, rel=1e-5)
    assert losses["loss_ce"] == pytest.approx(0.1 * math.log(92) / (1 + 1 + 0.1), rel=1e-4)
    assert total == pytest.approx(float(losses["loss_ce"] + 5 * losses["loss_bbox"] + 2 * losses["loss_giou"]))


def test_aux_layers_are_matched_and_weighted_like_the_last():
    torch.manual_seed(0)
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.4]])}
    layer = {"pred_logits": torch.randn(1, 4, 92), "pred_boxes": torch.rand(1, 4, 4) * 0.5 + 0.25}
    total, losses = DetrCriterion()({**layer, "aux_outputs": [layer]}, [target])
    assert {k: float(v) for k, v in losses.items() if k.endswith("_0")} == {
        f"{k}_0": float(v) for k, v in losses.items() if not k.endswith("_0")}
    single, _ = DetrCriterion()(layer, [target])
    assert total == pytest.approx(2 * float(single))
