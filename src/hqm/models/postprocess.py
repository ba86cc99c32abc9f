"""QPIC's inference post-processing (method.md §6); top-k selection belongs to the evaluator."""

from __future__ import annotations

import torch
from torch import Tensor

from hqm.models.box_ops import box_cxcywh_to_xyxy


@torch.no_grad()
def postprocess_hoi(outputs: dict, orig_sizes: Tensor) -> list[dict]:
    """Final-layer outputs + original (h, w) LongTensor[B, 2] -> one dict of numpy arrays per image.

    ``obj_scores``/``obj_labels``: max/argmax over the real classes of the softmax over all
    C_obj + 1 columns; ``verb_scores`` [Q, C_verb] = sigmoid(verb) · obj score; boxes absolute xyxy
    in the original image (no +1, no clipping).
    """
    obj_prob = outputs["pred_obj_logits"].float().softmax(-1)
    obj_scores, obj_labels = obj_prob[..., :-1].max(-1)
    verb_scores = outputs["pred_verb_logits"].float().sigmoid() * obj_scores.unsqueeze(-1)
    h, w = orig_sizes.to(obj_prob.device).float().unbind(1)
    scale = torch.stack((w, h, w, h), dim=1).unsqueeze(1)  # [B, 1, 4]
    sub_boxes = box_cxcywh_to_xyxy(outputs["pred_sub_boxes"].float()) * scale
    obj_boxes = box_cxcywh_to_xyxy(outputs["pred_obj_boxes"].float()) * scale
    arrays = [t.cpu().numpy() for t in (sub_boxes, obj_boxes, obj_labels, obj_scores, verb_scores)]
    return [
        {"sub_boxes": sb, "obj_boxes": ob, "obj_labels": ol, "obj_scores": os_, "verb_scores": vs}
        for sb, ob, ol, os_, vs in zip(*arrays)
    ]
