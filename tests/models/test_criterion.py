import math

import torch
from models_helpers import make_target, tiny_criterion

from hqm.models.criterion import box_losses, focal_verb_loss, obj_ce_loss, total_loss


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_focal_verb_loss_by_hand():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = [[0.5, _sig(2.0)], [_sig(-1.0), _sig(0.5)]]
    pos = (1 - p[0][0]) ** 2 * math.log(p[0][0]) + (1 - p[1][1]) ** 2 * math.log(p[1][1])
    neg = p[0][1] ** 2 * math.log(1 - p[0][1]) + p[1][0] ** 2 * math.log(1 - p[1][0])
    assert math.isclose(focal_verb_loss(logits, targets).item(), -(pos + neg) / 2, rel_tol=1e-6)
    # no positives: the negative sum, not divided
    no_pos = focal_verb_loss(logits, torch.zeros(2, 2)).item()
    expected = -sum(q**2 * math.log(1 - q) for row in p for q in row)
    assert math.isclose(no_pos, expected, rel_tol=1e-6)


def test_focal_verb_loss_is_unclamped_unless_asked():
    logits, targets = torch.tensor([[200.0]]), torch.tensor([[0.0]])
    assert math.isinf(focal_verb_loss(logits, targets).item())
    assert math.isfinite(focal_verb_loss(logits, targets, clamp=True).item())


def test_weighted_object_ce_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])  # second row: no-object (weight 0.1)
    ce0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    ce1 = -math.log(1 / (math.e + 2))
    weight = torch.tensor([1.0, 1.0, 0.1])
    assert math.isclose(obj_ce_loss(logits, labels, weight).item(), (ce0 + 0.1 * ce1) / 1.1, rel_tol=1e-6)
    assert math.isclose(obj_ce_loss(logits, labels).item(), (ce0 + ce1) / 2, rel_tol=1e-6)


def test_box_losses_by_hand_with_missing_object():
    src_sub = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    tgt_sub = torch.tensor([[0.5, 0.5, 0.4, 0.2], [0.5, 0.5, 0.2, 0.2]])  # L1 0.2, GIoU 0.5; exact
    src_obj = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]])
    tgt_obj = torch.tensor([[0.5, 0.5, 0.4, 0.2], [0.0, 0.0, 0.0, 0.0]])  # second object missing
    losses = box_losses(src_sub, src_obj, tgt_sub, tgt_obj, num_interactions=4.0)
    assert math.isclose(losses["loss_sub_bbox"].item(), 0.2 / 4, rel_tol=1e-5)
    assert math.isclose(losses["loss_sub_giou"].item(), 0.5 / 4, rel_tol=1e-5)
    assert math.isclose(losses["loss_obj_bbox"].item(), 0.2 / (1 + 1e-4), rel_tol=1e-5)
    assert math.isclose(losses["loss_obj_giou"].item(), 0.5 / (1 + 1e-4), rel_tol=1e-5)
    empty = box_losses(*(torch.zeros(0, 4),) * 4, num_interactions=1.0)
    assert all(v.item() == 0 for v in empty.values())


def test_criterion_terms_per_layer_and_matching_indices():
    criterion = tiny_criterion(num_obj=3, num_verb=2, dec_layers=3)
    torch.manual_seed(1)

    def layer():
        return {"pred_obj_logits": torch.randn(2, 4, 4, requires_grad=True), "pred_verb_logits": torch.randn(2, 4, 2),
                "pred_sub_boxes": torch.rand(2, 4, 4) * 0.4 + 0.3, "pred_obj_boxes": torch.rand(2, 4, 4) * 0.4 + 0.3}

    outputs = layer()
    outputs["aux_outputs"] = [layer(), layer()]
    targets = [make_target([1], [[0]], [[0.5, 0.5, 0.2, 0.2]], [[0.4, 0.4, 0.1, 0.1]], 2),
               make_target([0, 2], [[1], [0, 1]], [[0.5, 0.5, 0.2, 0.2]] * 2, [[0.6, 0.6, 0.2, 0.2], [0, 0, 0, 0]], 2)]
    losses = criterion(outputs, targets)
    for suffix in ("", "_0", "_1"):
        for name in ("loss_obj_ce", "loss_verb_ce", "loss_sub_bbox", "loss_obj_bbox", "loss_sub_giou", "loss_obj_giou"):
            assert name + suffix in losses
    assert "loss_obj_ce_2" not in losses and len(criterion.last_indices) == 3
    # final-layer object CE recomputed from the final matching, by hand
    rows = torch.full((2, 4), 3)
    for b, (src, tgt) in enumerate(criterion.last_indices[-1]):
        rows[b, src] = targets[b]["obj_labels"][tgt]
    w = torch.tensor([1.0, 1.0, 1.0, 0.1])
    logp = outputs["pred_obj_logits"].log_softmax(-1)
    nll = -logp.gather(-1, rows[..., None]).squeeze(-1)
    expected = (nll * w[rows]).sum() / w[rows].sum()
    torch.testing.assert_close(losses["loss_obj_ce"], expected)
    # subject box terms are normalised by N_int: doubling it halves them
    half = criterion(outputs, targets, num_interactions=6.0)
    torch.testing.assert_close(half["loss_sub_bbox"] * 2, losses["loss_sub_bbox"])
    weighted = total_loss(losses, criterion.weight_dict)
    manual = sum(losses[f"loss_sub_bbox{s}"] * 2.5 + losses[f"loss_obj_ce{s}"] for s in ("", "_0", "_1"))
    manual = manual + sum(losses[f"{n}{s}"] * (2.5 if "bbox" in n else 1.0)
                          for s in ("", "_0", "_1") for n in ("loss_verb_ce", "loss_obj_bbox", "loss_sub_giou", "loss_obj_giou"))
    torch.testing.assert_close(weighted, manual)
    weighted.backward()
    assert outputs["pred_obj_logits"].grad is not None
