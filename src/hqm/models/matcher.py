"""Hungarian matching of predictions to ground-truth pairs (method.md §3)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from hqm.models.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

Indices = list[tuple[Tensor, Tensor]]


def pair_cost_matrix(outputs: dict, targets: list[dict], cost_obj_class: float, cost_verb_class: float,
                     cost_bbox: float, cost_giou: float) -> Tensor:
    """Cost of every (query, GT pair) of the batch: -> [B*Nq, sum of n_b] (float32).

    Box costs are the max over subject and object; a missing object (all-zero box) contributes no
    object L1 cost and its object GIoU cost becomes -GIoU(pred, 0-box) + subject GIoU cost.
    """
    obj_prob = outputs["pred_obj_logits"].flatten(0, 1).float().softmax(-1)
    verb_prob = outputs["pred_verb_logits"].flatten(0, 1).float().sigmoid()
    sub_boxes = outputs["pred_sub_boxes"].flatten(0, 1).float()
    obj_boxes = outputs["pred_obj_boxes"].flatten(0, 1).float()

    tgt_obj = torch.cat([t["obj_labels"] for t in targets])
    tgt_verb = torch.cat([t["verb_labels"] for t in targets]).float().t()  # [C_verb, N]
    tgt_sub_boxes = torch.cat([t["sub_boxes"] for t in targets]).float()
    tgt_obj_boxes = torch.cat([t["obj_boxes"] for t in targets]).float()

    c_obj = -obj_prob[:, tgt_obj]
    c_verb = -(
        verb_prob.matmul(tgt_verb) / (tgt_verb.sum(0, keepdim=True) + 1e-4)
        + (1 - verb_prob).matmul(1 - tgt_verb) / ((1 - tgt_verb).sum(0, keepdim=True) + 1e-4)
    ) / 2
    has_obj = (tgt_obj_boxes != 0).any(dim=1)
    c_sub_l1 = torch.cdist(sub_boxes, tgt_sub_boxes, p=1)
    c_obj_l1 = torch.cdist(obj_boxes, tgt_obj_boxes, p=1) * has_obj.unsqueeze(0)
    c_l1 = torch.maximum(c_sub_l1, c_obj_l1)
    c_sub_giou = -generalized_box_iou(box_cxcywh_to_xyxy(sub_boxes), box_cxcywh_to_xyxy(tgt_sub_boxes))
    c_obj_giou = (-generalized_box_iou(box_cxcywh_to_xyxy(obj_boxes), box_cxcywh_to_xyxy(tgt_obj_boxes))
                  + c_sub_giou * (~has_obj).unsqueeze(0))
    c_giou = torch.maximum(c_sub_giou, c_obj_giou)
    return cost_obj_class * c_obj + cost_verb_class * c_verb + cost_bbox * c_l1 + cost_giou * c_giou


class HungarianMatcher(nn.Module):
    """One minimum-cost assignment per image; the whole cost matrix crosses to the host once."""

    def __init__(self, cost_obj_class: float = 1.0, cost_verb_class: float = 1.0,
                 cost_bbox: float = 2.5, cost_giou: float = 1.0):
        super().__init__()
        self.cost_obj_class = cost_obj_class
        self.cost_verb_class = cost_verb_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> Indices:
        """-> per image (query indices Long[k], target indices Long[k]), k = min(Nq, n_b)."""
        return self.match_layers([outputs], targets)[0]

    @torch.no_grad()
    def match_layers(self, layers: list[dict], targets: list[dict]) -> list[Indices]:
        """Match several decoder layers' outputs at once: one cost computation, one host copy."""
        batch, num_queries = layers[0]["pred_obj_logits"].shape[:2]
        sizes = [len(t["obj_labels"]) for t in targets]
        empty = torch.empty(0, dtype=torch.int64)
        if sum(sizes) == 0:
            return [[(empty, empty) for _ in targets] for _ in layers]
        keys = ("pred_obj_logits", "pred_verb_logits", "pred_sub_boxes", "pred_obj_boxes")
        stacked = {k: torch.cat([layer[k] for layer in layers]) for k in keys}
        cost = pair_cost_matrix(stacked, targets, self.cost_obj_class, self.cost_verb_class,
                                self.cost_bbox, self.cost_giou)
        cost = cost.view(len(layers), batch, num_queries, -1).cpu().numpy()
        all_indices = []
        for layer_cost in cost:
            indices, start = [], 0
            for b, size in enumerate(sizes):
                rows, cols = linear_sum_assignment(layer_cost[b, :, start : start + size])
                indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
                start += size
            all_indices.append(indices)
        return all_indices


def build_matcher(cost_obj_class: float, cost_verb_class: float, cost_bbox: float, cost_giou: float) -> HungarianMatcher:
    return HungarianMatcher(cost_obj_class, cost_verb_class, cost_bbox, cost_giou)


__all__ = ["HungarianMatcher", "Indices", "build_matcher", "pair_cost_matrix"]
