import torch
from models_helpers import make_target

from hqm.models.matcher import HungarianMatcher, pair_cost_matrix


def _outputs(obj_logits, verb_logits, sub_boxes, obj_boxes):
    return {"pred_obj_logits": torch.tensor(obj_logits)[None], "pred_verb_logits": torch.tensor(verb_logits)[None],
            "pred_sub_boxes": torch.tensor(sub_boxes)[None], "pred_obj_boxes": torch.tensor(obj_boxes)[None]}


def test_matcher_finds_the_obvious_assignment():
    # 3 queries, 2 GT pairs: query 2 reproduces pair 0, query 0 reproduces pair 1
    boxes = [[0.2, 0.2, 0.1, 0.1], [0.5, 0.5, 0.3, 0.3], [0.8, 0.7, 0.2, 0.2]]
    strong = 8.0
    outputs = _outputs(
        [[0.0, strong, 0.0], [0.0, 0.0, strong], [strong, 0.0, 0.0]],
        [[-strong, strong], [0.0, 0.0], [strong, -strong]],
        [boxes[1], boxes[2], boxes[0]], [boxes[1], boxes[2], boxes[0]],
    )
    target = make_target([0, 1], [[0], [1]], [boxes[0], boxes[1]], [boxes[0], boxes[1]], num_verb=2)
    (rows, cols), = HungarianMatcher()(outputs, [target])
    assert dict(zip(rows.tolist(), cols.tolist())) == {2: 0, 0: 1}


def test_matcher_handles_images_without_pairs_and_several_images():
    outputs = {"pred_obj_logits": torch.randn(2, 4, 3), "pred_verb_logits": torch.randn(2, 4, 2),
               "pred_sub_boxes": torch.rand(2, 4, 4) * 0.5 + 0.25, "pred_obj_boxes": torch.rand(2, 4, 4) * 0.5 + 0.25}
    empty = make_target([], [], [], [], num_verb=2)
    full = make_target([0, 1, 1], [[0], [1], [0, 1]], [[0.5, 0.5, 0.2, 0.2]] * 3, [[0.4, 0.4, 0.2, 0.2]] * 3, 2)
    (r0, c0), (r1, c1) = HungarianMatcher()(outputs, [empty, full])
    assert len(r0) == len(c0) == 0
    assert sorted(c1.tolist()) == [0, 1, 2] and len(set(r1.tolist())) == 3
    # matching layers together equals matching them one by one
    layers = HungarianMatcher().match_layers([outputs, outputs], [empty, full])
    assert [r.tolist() for r, _ in layers[1]] == [r0.tolist(), r1.tolist()]


def test_box_cost_is_max_of_subject_and_object_and_missing_object_rule():
    sub = [[0.5, 0.5, 0.2, 0.2]]
    obj = [[0.3, 0.3, 0.2, 0.2]]
    outputs = _outputs([[0.0, 0.0]], [[0.0]], sub, obj)
    gt_sub = [[0.6, 0.5, 0.2, 0.2]]  # L1 to predicted subject 0.1
    gt_obj = [[0.3, 0.1, 0.2, 0.2]]  # L1 to predicted object 0.2
    only_l1 = dict(cost_obj_class=0.0, cost_verb_class=0.0, cost_bbox=1.0, cost_giou=0.0)
    cost = pair_cost_matrix(outputs, [make_target([0], [[]], gt_sub, gt_obj, 1)], **only_l1)
    torch.testing.assert_close(cost, torch.tensor([[0.2]]))
    missing = pair_cost_matrix(outputs, [make_target([0], [[]], gt_sub, [0, 0, 0, 0], 1)], **only_l1)
    torch.testing.assert_close(missing, torch.tensor([[0.1]]))
    # GIoU: predicted subject [0.4,0.4,0.6,0.6] vs GT subject [0.5,0.4,0.7,0.6]: IoU 1/3, GIoU 1/3
    only_giou = dict(cost_obj_class=0.0, cost_verb_class=0.0, cost_bbox=0.0, cost_giou=1.0)
    giou = pair_cost_matrix(outputs, [make_target([0], [[]], gt_sub, [0, 0, 0, 0], 1)], **only_giou)
    # object side: -GIoU(pred obj, zero box) + subject cost; pred obj [0.2,0.2,0.4,0.4] vs point (0,0):
    # IoU 0, enclosing 0.16, union 0.04 -> GIoU = -0.75 -> cost 0.75 - 1/3 > -1/3
    torch.testing.assert_close(giou, torch.tensor([[0.75 - 1 / 3]]), atol=1e-6, rtol=0)


def test_class_and_verb_costs_by_hand():
    outputs = _outputs([[1.0, 0.0, 0.0]], [[0.0, 2.0]], [[0.5, 0.5, 0.2, 0.2]], [[0.5, 0.5, 0.2, 0.2]])
    target = make_target([0], [[1]], [[0.5, 0.5, 0.2, 0.2]], [[0.5, 0.5, 0.2, 0.2]], 2)
    only = dict(cost_bbox=0.0, cost_giou=0.0)
    c_obj = pair_cost_matrix(outputs, [target], cost_obj_class=1.0, cost_verb_class=0.0, **only)
    e = torch.e
    torch.testing.assert_close(c_obj, torch.tensor([[-e / (e + 2)]]))
    c_verb = pair_cost_matrix(outputs, [target], cost_obj_class=0.0, cost_verb_class=1.0, **only)
    s0, s1 = 0.5, torch.sigmoid(torch.tensor(2.0)).item()
    expected = -(s1 / (1 + 1e-4) + (1 - s0) / (1 + 1e-4)) / 2
    torch.testing.assert_close(c_verb, torch.tensor([[expected]]))
