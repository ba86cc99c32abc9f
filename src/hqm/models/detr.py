"""DETR (Carion et al., ECCV 2020): the object detector whose COCO weights QPIC starts from.

Here it trains a stand-in for those weights where they cannot be downloaded (the CPU demo:
``hqm pretrain-detr``, docs/demo.md): same trunk as :class:`~hqm.models.qpic.QPIC`, one class head
over COCO's 91 ids + no-object and one box head, so its state dict has the published ``DETR``'s keys
(``tests/fixtures/state_dicts/detr_r50_coco.tsv``) and ``hqm convert-weights`` reads it as it reads
the released file. Losses and matching follow DETR's ``SetCriterion`` / ``HungarianMatcher``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from hqm.models.backbone import Backbone
from hqm.models.box_ops import box_cxcywh_to_xyxy, generalized_box_iou, paired_generalized_box_iou
from hqm.models.position import PositionEmbeddingSine
from hqm.models.qpic import MLP, TransformerDetector
from hqm.models.transformer import Transformer

COCO_NUM_CLASSES = 91  # DETR's class head: COCO category ids 0..90, then the no-object row 91


class DETR(TransformerDetector):
    """DETR; attributes registered in the published order, so the keys (and their order) match."""

    def __init__(self, backbone: Backbone, transformer: Transformer, num_classes: int = COCO_NUM_CLASSES,
                 num_queries: int = 100, aux_loss: bool = True):
        super().__init__()
        d = transformer.d_model
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.num_classes = num_classes
        self.transformer = transformer
        self.class_embed = nn.Linear(d, num_classes + 1)
        self.bbox_embed = MLP(d, d, 4, 3)
        self.query_embed = nn.Embedding(num_queries, d)
        self.input_proj = nn.Conv2d(backbone.num_channels, d, kernel_size=1)
        self.backbone = nn.ModuleList([backbone])
        self.position = PositionEmbeddingSine(d // 2)

    def forward(self, images: Tensor, mask: Tensor) -> dict:
        """images [B, 3, H, W], mask Bool[B, H, W] -> pred_logits [B, Nq, C+1], pred_boxes [B, Nq, 4]
        (normalised cxcywh) of the last decoder layer, plus ``aux_outputs`` of the others."""
        encoded = self.encode(images, mask)
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, images.shape[0], -1)
        hs, _ = self.decode(encoded, query_pos)
        logits, boxes = self.class_embed(hs), self.bbox_embed(hs).sigmoid()
        out = {"pred_logits": logits[-1], "pred_boxes": boxes[-1]}
        if self.aux_loss:
            out["aux_outputs"] = [{"pred_logits": a, "pred_boxes": b} for a, b in zip(logits[:-1], boxes[:-1])]
        return out


@torch.no_grad()
def match_boxes(outputs: dict, targets: list[dict], cost_class: float, cost_bbox: float,
                cost_giou: float) -> list[tuple[Tensor, Tensor]]:
    """DETR's Hungarian matching: cost = -p(class) * cost_class + L1 * cost_bbox - GIoU * cost_giou.

    targets: per image ``labels`` Long[n] and ``boxes`` [n, 4] normalised cxcywh. Returns per image
    (query indices, target indices), both Long[min(Nq, n)].
    """
    batch, num_queries = outputs["pred_logits"].shape[:2]
    prob = outputs["pred_logits"].flatten(0, 1).float().softmax(-1)
    boxes = outputs["pred_boxes"].flatten(0, 1).float()
    tgt_labels = torch.cat([t["labels"] for t in targets])
    tgt_boxes = torch.cat([t["boxes"] for t in targets]).float()
    cost = (-cost_class * prob[:, tgt_labels] + cost_bbox * torch.cdist(boxes, tgt_boxes, p=1)
            - cost_giou * generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(tgt_boxes)))
    cost = cost.view(batch, num_queries, -1).cpu()
    indices, start = [], 0
    for b, target in enumerate(targets):
        size = len(target["labels"])
        rows, cols = linear_sum_assignment(cost[b, :, start:start + size].numpy())
        indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        start += size
    return indices


class DetrCriterion(nn.Module):
    """DETR's losses (labels: weighted cross-entropy; boxes: L1 and GIoU / number of boxes), on the
    last decoder layer and, matched separately, on every aux layer (keys suffixed ``_{i}``)."""

    def __init__(self, num_classes: int = COCO_NUM_CLASSES, cost_class: float = 1.0, cost_bbox: float = 5.0,
                 cost_giou: float = 2.0, ce_coef: float = 1.0, bbox_coef: float = 5.0, giou_coef: float = 2.0,
                 eos_coef: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.costs = (cost_class, cost_bbox, cost_giou)
        self.coefs = {"loss_ce": ce_coef, "loss_bbox": bbox_coef, "loss_giou": giou_coef}
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)

    def layer_losses(self, outputs: dict, targets: list[dict], num_boxes: float) -> dict[str, Tensor]:
        logits = outputs["pred_logits"]
        indices = match_boxes(outputs, targets, *self.costs)
        batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)]).to(logits.device)
        query_idx = torch.cat([src for src, _ in indices]).to(logits.device)
        labels = torch.cat([t["labels"][tgt] for t, (_, tgt) in zip(targets, indices)]).to(logits.device)
        tgt_boxes = torch.cat([t["boxes"][tgt] for t, (_, tgt) in zip(targets, indices)]).to(logits.device).float()
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        classes[batch_idx, query_idx] = labels
        src_boxes = outputs["pred_boxes"][batch_idx, query_idx].float()
        giou = paired_generalized_box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(tgt_boxes))
        return {
            "loss_ce": F.cross_entropy(logits.float().transpose(1, 2), classes, self.empty_weight),
            "loss_bbox": F.l1_loss(src_boxes, tgt_boxes, reduction="sum") / num_boxes,
            "loss_giou": (1 - giou).sum() / num_boxes,
        }

    def forward(self, outputs: dict, targets: list[dict]) -> tuple[Tensor, dict[str, Tensor]]:
        """-> (weighted total, unweighted terms of every layer)."""
        num_boxes = max(1.0, float(sum(len(t["labels"]) for t in targets)))
        losses = self.layer_losses(outputs, targets, num_boxes)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update({f"{k}_{i}": v for k, v in self.layer_losses(aux, targets, num_boxes).items()})
        total = sum(value * self.coefs[key.rsplit("_", 1)[0] if key[-1].isdigit() else key]
                    for key, value in losses.items())
        return total, losses


__all__ = ["COCO_NUM_CLASSES", "DETR", "DetrCriterion", "match_boxes"]
