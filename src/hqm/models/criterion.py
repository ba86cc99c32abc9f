"""QPIC's set criterion (method.md §4) and the loss primitives the hard-query losses reuse.

Every primitive returns an **unweighted** scalar; weights live in the criterion's ``weight_dict``.
Normalisers (trap 13): subject boxes ÷ N_int, object boxes ÷ local count of existing object boxes
(+1e-4), verb focal ÷ local positive count, object CE = class-weighted mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hqm.errors import HqmError
from hqm.models.box_ops import box_cxcywh_to_xyxy, paired_generalized_box_iou
from hqm.models.matcher import HungarianMatcher, Indices

LOSS_NAMES = ("loss_obj_ce", "loss_verb_ce", "loss_sub_bbox", "loss_obj_bbox", "loss_sub_giou", "loss_obj_giou")


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------


def obj_ce_loss(logits: Tensor, labels: Tensor, class_weight: Tensor | None = None) -> Tensor:
    """Cross-entropy, logits [N, C] and labels Long[N] -> scalar.

    With ``class_weight`` [C] it is PyTorch's weighted mean Σ w_t CE / Σ w_t (QPIC: weight eos_coef
    on the no-object column); without, the plain mean (hard streams: real classes only).
    """
    return F.cross_entropy(logits.float(), labels, weight=class_weight)


def focal_verb_loss(logits: Tensor, targets: Tensor, clamp: bool = False) -> Tensor:
    """QPIC's focal verb loss (γ = 2, no α) on logits and multi-hot targets of equal shape [..., C].

    -[Σ_{y=1} (1-p)² log p + Σ_{y=0} p² log(1-p)] / max(N_pos, 1), p = σ(logit). Unclamped like
    the reference unless ``clamp`` (then p ∈ [1e-12, 1-1e-12]). Computed in float32.
    """
    prob = logits.float().sigmoid()
    if clamp:  # 1 - 1e-12 rounds to 1 in float32, so the clamped variant runs in float64
        prob = logits.double().sigmoid().clamp(1e-12, 1 - 1e-12)
    targets = targets.to(prob.dtype)
    pos = targets.eq(1).float()
    neg = targets.lt(1).float()
    pos_loss = (torch.log(prob) * (1 - prob).pow(2) * pos).sum()
    neg_loss = (torch.log(1 - prob) * prob.pow(2) * neg).sum()
    # N_pos = 0 -> -neg_loss, as the reference's branch, without a host sync
    return (-(pos_loss + neg_loss) / pos.sum().clamp(min=1)).float()


def bce_verb_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """The unused plain-BCE variant of the reference (mean over all entries)."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())


def box_losses(src_sub: Tensor, src_obj: Tensor, tgt_sub: Tensor, tgt_obj: Tensor,
               num_interactions: float | Tensor) -> dict[str, Tensor]:
    """L1 and GIoU terms of matched rows, all boxes [K, 4] normalised cxcywh.

    Subject terms ÷ ``num_interactions``; object terms only where the GT object box exists
    (not all zero) ÷ (their count + 1e-4). K = 0 gives zeros.
    """
    src_sub, src_obj, tgt_sub, tgt_obj = src_sub.float(), src_obj.float(), tgt_sub.float(), tgt_obj.float()
    exists = (tgt_obj != 0).any(dim=1).float()
    obj_norm = exists.sum() + 1e-4
    l1_sub = F.l1_loss(src_sub, tgt_sub, reduction="none").sum()
    l1_obj = (F.l1_loss(src_obj, tgt_obj, reduction="none") * exists[:, None]).sum()
    giou_sub = 1 - paired_generalized_box_iou(box_cxcywh_to_xyxy(src_sub), box_cxcywh_to_xyxy(tgt_sub))
    giou_obj = 1 - paired_generalized_box_iou(box_cxcywh_to_xyxy(src_obj), box_cxcywh_to_xyxy(tgt_obj))
    return {
        "loss_sub_bbox": l1_sub / num_interactions,
        "loss_obj_bbox": l1_obj / obj_norm,
        "loss_sub_giou": giou_sub.sum() / num_interactions,
        "loss_obj_giou": (giou_obj * exists).sum() / obj_norm,
    }


def matched_index(indices: Indices, device: torch.device) -> tuple[Tensor, Tensor]:
    """Hungarian indices -> (batch index Long[K], query index Long[K]) on ``device``."""
    batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    query_idx = torch.cat([src for src, _ in indices])
    return batch_idx.to(device, non_blocking=True), query_idx.to(device, non_blocking=True)


def matched_targets(targets: list[dict], indices: Indices, keys=("obj_labels", "verb_labels", "sub_boxes", "obj_boxes")) -> dict[str, Tensor]:
    """The GT rows assigned to the matched queries, concatenated in batch order."""
    out = {}
    for key in keys:
        rows = [t[key][tgt.to(t[key].device)] for t, (_, tgt) in zip(targets, indices)]
        out[key] = torch.cat(rows)
    return out


def local_num_interactions(targets: list[dict]) -> float:
    """N_int of the local batch: max(1, number of GT pairs)."""
    return max(1.0, float(sum(len(t["obj_labels"]) for t in targets)))


# ---------------------------------------------------------------------------------------------
# Criterion
# ---------------------------------------------------------------------------------------------


def qpic_weight_dict(obj: float, verb: float, bbox: float, giou: float, num_layers: int) -> dict[str, float]:
    """Weights of the final-layer terms plus the ``_{i}`` terms of aux layers i = 0..num_layers-2.

    ``num_layers`` is the detector's number of decoder layers (``model.dec_layers``).
    """
    if num_layers < 1:
        raise HqmError(f"model.dec_layers: must be >= 1, got {num_layers}")
    base = {"loss_obj_ce": obj, "loss_verb_ce": verb, "loss_sub_bbox": bbox, "loss_obj_bbox": bbox,
            "loss_sub_giou": giou, "loss_obj_giou": giou}
    weights = dict(base)
    for i in range(num_layers - 1):
        weights.update({f"{k}_{i}": v for k, v in base.items()})
    return weights


class SetCriterionHOI(nn.Module):
    """QPIC's losses on the final layer and on every aux layer, each with its own matching."""

    def __init__(self, num_obj_classes: int, num_verb_classes: int, matcher: HungarianMatcher,
                 weight_dict: dict[str, float], eos_coef: float = 0.1, verb_loss_type: str = "focal",
                 focal_clamp: bool = False):
        super().__init__()
        if verb_loss_type not in ("focal", "bce"):
            raise ValueError(f"unknown verb_loss_type {verb_loss_type!r}")
        self.num_obj_classes = num_obj_classes
        self.num_verb_classes = num_verb_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.verb_loss_type = verb_loss_type
        self.focal_clamp = focal_clamp
        empty_weight = torch.ones(num_obj_classes + 1)
        empty_weight[-1] = eos_coef
        self.register_buffer("empty_weight", empty_weight)
        self.last_indices: list[Indices] = []

    def layer_losses(self, outputs: dict, targets: list[dict], indices: Indices,
                     num_interactions: float | Tensor) -> dict[str, Tensor]:
        """The six loss terms plus two logged errors of one decoder layer's outputs."""
        obj_logits = outputs["pred_obj_logits"]
        verb_logits = outputs["pred_verb_logits"]
        device = obj_logits.device
        batch_idx, query_idx = matched_index(indices, device)
        tgt = matched_targets(targets, indices)
        batch, num_queries = obj_logits.shape[:2]

        obj_target = torch.full((batch, num_queries), self.num_obj_classes, dtype=torch.int64, device=device)
        obj_target[batch_idx, query_idx] = tgt["obj_labels"].to(device)
        losses = {"loss_obj_ce": obj_ce_loss(obj_logits.flatten(0, 1), obj_target.flatten(), self.empty_weight)}

        verb_target = torch.zeros_like(verb_logits, dtype=torch.float32)
        verb_target[batch_idx, query_idx] = tgt["verb_labels"].to(device, torch.float32)
        if self.verb_loss_type == "focal":
            losses["loss_verb_ce"] = focal_verb_loss(verb_logits, verb_target, self.focal_clamp)
        else:
            losses["loss_verb_ce"] = bce_verb_loss(verb_logits, verb_target)

        losses.update(box_losses(
            outputs["pred_sub_boxes"][batch_idx, query_idx], outputs["pred_obj_boxes"][batch_idx, query_idx],
            tgt["sub_boxes"].to(device), tgt["obj_boxes"].to(device), num_interactions,
        ))
        with torch.no_grad():
            if len(batch_idx):
                correct = obj_logits[batch_idx, query_idx].argmax(-1).eq(tgt["obj_labels"].to(device))
                losses["obj_class_error"] = 100 - 100 * correct.float().mean()
            else:
                losses["obj_class_error"] = torch.tensor(100.0, device=device)
            num_pred = (obj_logits.argmax(-1) != self.num_obj_classes).sum(1).float()
            num_gt = torch.tensor([float(len(t["obj_labels"])) for t in targets], device=device)
            losses["obj_cardinality_error"] = F.l1_loss(num_pred, num_gt)
        return losses

    def forward(self, outputs: dict, targets: list[dict], num_interactions: float | None = None) -> dict[str, Tensor]:
        """-> unweighted terms; aux layer i adds the same names with suffix ``_{i}``."""
        if num_interactions is None:
            num_interactions = local_num_interactions(targets)
        final = {k: v for k, v in outputs.items() if k != "aux_outputs"}
        aux = outputs.get("aux_outputs", [])
        if aux and f"loss_obj_ce_{len(aux) - 1}" not in self.weight_dict:
            raise HqmError(f"criterion: the outputs have {len(aux) + 1} decoder layers, the weight table "
                           "fewer (build the criterion with the detector's model.dec_layers)")
        all_indices = self.matcher.match_layers([*aux, final], targets)
        self.last_indices = all_indices
        losses = self.layer_losses(final, targets, all_indices[-1], num_interactions)
        for i, layer in enumerate(aux):
            layer_losses = self.layer_losses(layer, targets, all_indices[i], num_interactions)
            losses.update({f"{k}_{i}": v for k, v in layer_losses.items() if k in LOSS_NAMES})
        return losses


def total_loss(losses: dict[str, Tensor], weight_dict: dict[str, float]) -> Tensor:
    """Σ loss[k] · weight[k] over the weighted keys present in ``losses``."""
    return sum(losses[k] * w for k, w in weight_dict.items() if k in losses)
