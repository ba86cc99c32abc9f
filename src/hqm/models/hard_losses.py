"""Losses of the hard-positive streams (method.md §8.2.6, §8.3, §8.5; traps 9-10).

A hard stream's predictions are supervised only on the rows that have a target: GBS query k of
image b <-> GT pair k of image b (fixed, every layer); AMM copy q <-> the GT pair the learnable
query q was matched to by the Hungarian matcher of the same layer. There is no no-object term.
Terms reuse QPIC's primitives: object CE as a plain mean over the supervised rows, focal verb loss
over those rows normalised by their positive labels, L1/GIoU with QPIC's normalisers.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hqm.models.criterion import (
    LOSS_NAMES,
    bce_verb_loss,
    box_losses,
    focal_verb_loss,
    matched_index,
    matched_targets,
    obj_ce_loss,
)
from hqm.models.matcher import Indices


def gbs_indices(targets: list[dict]) -> Indices:
    """Fixed GBS assignment: query k <-> pair k of each image (CPU index tensors)."""
    out = []
    for t in targets:
        rows = torch.arange(int(t["obj_labels"].shape[0]))
        out.append((rows, rows.clone()))
    return out


def hard_layer_losses(
    outputs: dict, targets: list[dict], indices: Indices, num_interactions: float | Tensor,
    verb_loss_type: str = "focal", focal_clamp: bool = False,
) -> dict[str, Tensor]:
    """The six unweighted terms (names as QPIC's ``LOSS_NAMES``) of one layer of a hard stream.

    ``outputs``: ``pred_obj_logits [B, Nh, C+1]``, ``pred_verb_logits [B, Nh, V]``,
    ``pred_sub_boxes``/``pred_obj_boxes [B, Nh, 4]``; ``indices``: per image (query rows, GT rows).
    With no supervised row at all every term is a zero that keeps the graph connected.
    """
    obj_logits = outputs["pred_obj_logits"]
    if sum(len(src) for src, _ in indices) == 0:
        zero = sum(outputs[k].sum() for k in ("pred_obj_logits", "pred_verb_logits",
                                                "pred_sub_boxes", "pred_obj_boxes")) * 0.0
        return {name: zero for name in LOSS_NAMES}
    device = obj_logits.device
    batch_idx, query_idx = matched_index(indices, device)
    tgt = matched_targets(targets, indices)
    verb_logits = outputs["pred_verb_logits"][batch_idx, query_idx]
    verb_target = tgt["verb_labels"].to(device, torch.float32)
    losses = {
        "loss_obj_ce": obj_ce_loss(obj_logits[batch_idx, query_idx], tgt["obj_labels"].to(device)),
        "loss_verb_ce": focal_verb_loss(verb_logits, verb_target, focal_clamp)
        if verb_loss_type == "focal" else bce_verb_loss(verb_logits, verb_target),
    }
    losses.update(box_losses(
        outputs["pred_sub_boxes"][batch_idx, query_idx], outputs["pred_obj_boxes"][batch_idx, query_idx],
        tgt["sub_boxes"].to(device), tgt["obj_boxes"].to(device), num_interactions,
    ))
    return losses


def hard_stream_losses(
    stream: str, hard_outputs: dict, targets: list[dict], learnable_indices: list[Indices],
    num_interactions: float | Tensor, verb_loss_type: str = "focal", focal_clamp: bool = False,
) -> dict[str, Tensor]:
    """All layers of one hard stream -> ``{stream}_{term}`` (final layer) and ``{stream}_{term}_{i}``.

    ``learnable_indices``: the learnable stream's per-layer Hungarian indices (aux layers first,
    final layer last), used by AMM; GBS uses :func:`gbs_indices` at every layer.
    """
    layers = [*hard_outputs.get("aux_outputs", []), hard_outputs]
    if stream == "gbs":
        per_layer = [gbs_indices(targets)] * len(layers)
    elif stream == "amm":
        if len(learnable_indices) != len(layers):
            raise ValueError(f"AMM needs {len(layers)} layers of learnable indices, got {len(learnable_indices)}")
        per_layer = learnable_indices
    else:
        raise ValueError(f"unknown hard stream {stream!r}")
    out = {}
    last = len(layers) - 1
    for i, (layer, indices) in enumerate(zip(layers, per_layer)):
        suffix = "" if i == last else f"_{i}"
        terms = hard_layer_losses(layer, targets, indices, num_interactions, verb_loss_type, focal_clamp)
        out.update({f"{stream}_{name}{suffix}": value for name, value in terms.items()})
    return out
