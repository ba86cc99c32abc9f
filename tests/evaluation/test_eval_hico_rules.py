"""Hand-computed HICO-DET cases: no fallback, duplicate GT, class-aware IoU, cap, Q3, Known-Object."""

import numpy as np
import pytest

from hqm.data.annotations import HoiImageAnnotation
from hqm.data.classes import hico_hoi_categories, hico_validity_matrix
from hqm.errors import HqmError
from hqm.evaluation.hico import HicoGroundTruth, evaluate_hico
from hqm.evaluation.predictions import ImagePrediction

CAT = hico_hoi_categories()[0]  # a real (verb, object) category
OBJ, VERB = CAT.object_index, CAT.verb_index
OTHER_OBJ = next(c.object_index for c in hico_hoi_categories() if c.verb_index == VERB and c.object_index != OBJ)
PERSON = [0, 0, 99, 99]
OBJ1 = [100, 0, 199, 99]
OBJ2 = [110, 0, 209, 99]  # IoU(OBJ1, OBJ2) = 0.82


def image(name, boxes, labels, hois):
    return HoiImageAnnotation(name, np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(labels, np.int64),
                              np.asarray(hois, np.int64).reshape(-1, 3))


def triplets(name, rows):
    """rows: (obj_box, obj_label, score) with the exact person box and verb VERB."""
    n = len(rows)
    return ImagePrediction(name, np.tile(np.float32(PERSON), (n, 1)), np.float32([r[0] for r in rows]).reshape(n, 4),
                           np.int64([r[1] for r in rows]), np.float32([r[2] for r in rows]), np.full(n, VERB))


def gt_of(*images, known=None):
    return HicoGroundTruth(list(images), {}, hico_validity_matrix(), known)


def ap_of(result, obj=OBJ):
    return next(r for r in result["per_category"] if r["triplet"] == [0, obj, VERB])


def test_no_fallback_to_the_unused_gt():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1, OBJ2], [0, OBJ, OBJ], [[0, 1, VERB], [0, 2, VERB]]))
    # exact first pair (TP), a box best on OBJ1 but >= .5 with OBJ2 (FP: no fallback), exact OBJ2 (TP)
    pred = triplets("a.jpg", [(OBJ1, OBJ, 0.9), ([102, 0, 201, 99], OBJ, 0.8), (OBJ2, OBJ, 0.7)])
    row = ap_of(evaluate_hico(gt, [pred]))
    assert (row["num_tp"], row["num_det"]) == (2, 3)
    assert row["ap"] == pytest.approx((6 + 5 * 2 / 3) / 11, abs=1e-15)


def test_duplicate_gt_counts_but_matches_once():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1], [0, OBJ], [[0, 1, VERB], [0, 1, VERB]]))
    row = ap_of(evaluate_hico(gt, [triplets("a.jpg", [(OBJ1, OBJ, 0.9), (OBJ1, OBJ, 0.8)])]))
    assert (row["num_gt"], row["num_tp"]) == (2, 1)
    assert row["ap"] == pytest.approx(6 / 11, abs=1e-15)


def test_class_aware_iou_and_image_without_predictions():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1], [0, OBJ], [[0, 1, VERB]]),
               image("b.jpg", [PERSON, OBJ1], [0, OTHER_OBJ], [[0, 1, VERB]]))
    # exact boxes but the wrong object label: an FP of (OTHER_OBJ, VERB), nothing for (OBJ, VERB)
    result = evaluate_hico(gt, [triplets("a.jpg", [(OBJ1, OTHER_OBJ, 0.9)])])
    assert ap_of(result)["num_det"] == 0 and ap_of(result)["ap"] == 0.0
    other = ap_of(result, OTHER_OBJ)
    assert (other["num_det"], other["num_tp"], other["num_gt"]) == (1, 0, 1)  # b.jpg had no predictions


def test_per_image_cap_and_images_without_gt():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1], [0, OBJ], [[0, 1, VERB]]), image("empty.jpg", [], [], []))
    far = [300, 300, 310, 310]
    rows = [(far, OBJ, 0.9 - i * 0.001) for i in range(100)] + [(OBJ1, OBJ, 0.5)]
    capped = ap_of(evaluate_hico(gt, [triplets("a.jpg", rows)]))
    assert (capped["num_det"], capped["num_tp"]) == (100, 0)
    uncapped = ap_of(evaluate_hico(gt, [triplets("a.jpg", rows)], max_hois_per_image=None))
    assert (uncapped["num_det"], uncapped["num_tp"]) == (101, 1)
    # Q3: candidates of an image without GT boxes are ignored, or FPs when asked
    preds = [triplets("a.jpg", [(OBJ1, OBJ, 0.5)]), triplets("empty.jpg", [(OBJ1, OBJ, 0.9)])]
    assert ap_of(evaluate_hico(gt, preds))["ap"] == pytest.approx(1.0, abs=1e-15)
    q3_off = ap_of(evaluate_hico(gt, preds, fp_on_images_without_gt=True))
    assert q3_off["num_det"] == 2 and q3_off["ap"] == pytest.approx(0.5, abs=1e-15)


def test_known_object_drops_detections_in_images_without_the_object():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1], [0, OBJ], [[0, 1, VERB]]),
               image("b.jpg", [PERSON, OBJ1], [0, OTHER_OBJ], [[0, 1, 58 - 1]]),
               known={"a.jpg": np.array([OBJ]), "b.jpg": np.array([OTHER_OBJ])})
    preds = [triplets("a.jpg", [(OBJ1, OBJ, 0.5)]), triplets("b.jpg", [(OBJ1, OBJ, 0.9)])]
    default = ap_of(evaluate_hico(gt, preds, "official", "default"))
    known = ap_of(evaluate_hico(gt, preds, "official", "known_object"))
    assert (default["num_det"], default["ap"]) == (2, pytest.approx(0.5, abs=1e-15))
    assert (known["num_det"], known["ap"]) == (1, pytest.approx(1.0, abs=1e-15))


def test_official_box_offset_and_unknown_image():
    gt = gt_of(image("a.jpg", [[1, 1, 10, 10], [1, 1, 10, 10]], [0, OBJ], [[0, 1, VERB]]))
    # 0-based detections [0, 0, 4, 9] become [1, 1, 5, 10]: IoU 0.5 exactly -> TP only with +1
    n = ImagePrediction("a.jpg", np.float32([[0, 0, 4, 9]]), np.float32([[0, 0, 4, 9]]), np.int64([OBJ]),
                        np.float32([0.9]), np.int64([VERB]))
    assert ap_of(evaluate_hico(gt, [n], "official"))["num_tp"] == 1
    assert ap_of(evaluate_hico(gt, [n], "official", det_box_offset=0.0))["num_tp"] == 0
    n.file_name = "nope.jpg"
    with pytest.raises(HqmError, match="'nope.jpg'.*not an image"):
        evaluate_hico(gt, [n])


def test_round_boxes_uses_matlab_rounding():
    gt = gt_of(image("a.jpg", [[1, 1, 8, 10], [1, 1, 8, 10]], [0, OBJ], [[0, 1, VERB]]))
    # x2 = 2.5: MATLAB rounds half away from zero to 3 -> [1, 1, 4, 10] after +1, IoU 4/8 (TP);
    # numpy's half-to-even would give 2 (IoU 3/8) and no rounding 3.5/8: both FP
    pred = ImagePrediction("a.jpg", np.float32([[0, 0, 2.5, 9]]), np.float32([[0, 0, 2.5, 9]]), np.int64([OBJ]),
                           np.float32([0.9]), np.int64([VERB]))
    assert ap_of(evaluate_hico(gt, [pred], "official", round_boxes=True))["num_tp"] == 1
    assert ap_of(evaluate_hico(gt, [pred], "official"))["num_tp"] == 0
    with pytest.raises(HqmError, match="unexpected keyword"):
        evaluate_hico(gt, [pred], "official", no_such_option=True)


def test_unlisted_images_are_an_error_or_images_without_gt():
    gt = gt_of(image("a.jpg", [PERSON, OBJ1], [0, OBJ], [[0, 1, VERB]]))
    preds = [triplets("a.jpg", [(OBJ1, OBJ, 0.5)]), triplets("unlisted.jpg", [(OBJ1, OBJ, 0.9)])]
    with pytest.raises(HqmError, match="'unlisted.jpg': not an image of the ground truth"):
        evaluate_hico(gt, preds)
    assert ap_of(evaluate_hico(gt, preds, unlisted_images="no_gt"))["num_det"] == 1  # QPIC: ignored (Q3)
    official = ap_of(evaluate_hico(gt, preds, "official", unlisted_images="no_gt"))
    assert official["num_det"] == 2 and official["ap"] == pytest.approx(0.5, abs=1e-15)  # an FP first
