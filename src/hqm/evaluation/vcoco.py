"""V-COCO evaluation (evaluation.md §2.4-2.6), one import point for three modules:

* :func:`evaluate_vcoco_official` -- v-coco ``vsrl_eval.py``: agent AP and role AP in Scenario 1 / 2
  (:mod:`hqm.evaluation.vcoco_official`);
* :func:`write_official_pickle` -- QPIC's export of the official detections pickle
  (:mod:`hqm.evaluation.vcoco_pickle`);
* :func:`evaluate_vcoco_qpic` -- QPIC's training-time python metric (``mAP_all`` / ``mAP_thesis``), here.
"""

from __future__ import annotations

import numpy as np

from hqm.data.annotations import HoiImageAnnotation
from hqm.data.classes import (
    NUM_VCOCO_OBJECT_CLASSES,
    NUM_VCOCO_VERBS,
    VCOCO_THESIS_CLASSES,
    VCOCO_VERB_CLASSES,
)
from hqm.errors import HqmError
from hqm.evaluation.ap import THRESHOLDS, eleven_point_ap, rank_detections
from hqm.evaluation.hico import rowwise_iou
from hqm.evaluation.matching import first_best, first_occurrence, join_on_key
from hqm.evaluation.predictions import ImagePrediction, validate_predictions
from hqm.evaluation.vcoco_official import (
    IOU_THRESHOLD,
    PAIR_NAMES,
    VcocoOfficialGT,
    evaluate_vcoco_detections,
    evaluate_vcoco_official,
    load_vcoco_official,
)
from hqm.evaluation.vcoco_pickle import (
    NUM_ACTIONS,
    VcocoDetections,
    detections_from_dicts,
    detections_from_predictions,
    detections_to_dicts,
    extended_correct_mat,
    image_id_of,
    read_official_pickle,
    write_official_pickle,
)


def _qpic_candidates(gt: list[HoiImageAnnotation], predictions: list[ImagePrediction], correct_mat: np.ndarray,
                     max_hois: int) -> tuple[np.ndarray, ...]:
    """Per GT image (in order): candidates masked with the [29, 81] matrix, stably sorted by
    descending score, first ``max_hois``. Returns image [K], sub [K, 4], obj [K, 4], object label [K],
    verb [K], masked score [K]."""
    preds = {p.file_name: p for p in predictions}
    corre = extended_correct_mat(correct_mat).astype(np.float32)
    parts = []
    for i, img in enumerate(gt):
        pred = preds.get(img.file_name)
        if pred is None or len(pred) == 0:
            continue
        rows, verbs, scores = pred.candidates()
        labels = pred.obj_labels[rows]
        masked = scores * corre[verbs, labels]
        order = np.argsort(-masked, kind="stable")[:max_hois]
        rows = rows[order]
        parts.append((np.full(len(rows), i, np.int64), pred.sub_boxes[rows], pred.obj_boxes[rows],
                      labels[order], verbs[order], masked[order]))
    if parts:
        return tuple(np.concatenate(p) for p in zip(*parts))
    z, box = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    return z, box, box, z, z, np.zeros(0, np.float32)


def evaluate_vcoco_qpic(gt: list[HoiImageAnnotation], predictions: list[ImagePrediction],
                        correct_mat: np.ndarray, max_hois: int = 100, source: str = "predictions") -> dict:
    """QPIC ``VCOCOEvaluator`` (§2.6): per verb class 11-point AP, ``mAP_all``, ``mAP_thesis``.

    ``max_hois``: per-image cap (>= 1); ``source`` names the predictions (a file) in error messages.
    """
    if isinstance(max_hois, bool) or not isinstance(max_hois, int) or max_hois < 1:
        raise HqmError(f"evaluate_vcoco_qpic: max_hois must be a positive integer, got {max_hois!r}")
    names = {img.file_name: i for i, img in enumerate(gt)}
    validate_predictions(predictions, source, set(names), NUM_VCOCO_OBJECT_CLASSES, NUM_VCOCO_VERBS)
    c_img, c_sub, c_obj, c_lab, c_verb, c_score = _qpic_candidates(gt, predictions, correct_mat, max_hois)
    offsets = np.cumsum([0] + [len(img.boxes) for img in gt])
    gt_boxes = np.concatenate([img.boxes for img in gt] + [np.zeros((0, 4))]).astype(np.float32)
    gt_labels = np.concatenate([img.labels for img in gt] + [np.zeros(0, np.int64)])
    hoi_img = np.concatenate([np.full(len(img.hois), i, np.int64) for i, img in enumerate(gt)] + [np.zeros(0, np.int64)])
    hois = np.concatenate([img.hois for img in gt] + [np.zeros((0, 3), np.int64)])
    hoi_sub = hois[:, 0] + offsets[hoi_img]
    no_obj = hois[:, 1] < 0
    hoi_obj = np.where(no_obj, hoi_sub, hois[:, 1] + offsets[hoi_img])
    npos = np.bincount(hois[:, 2], minlength=NUM_VCOCO_VERBS)

    num_v = NUM_VCOCO_VERBS
    pair_c, pair_h = join_on_key(c_img * num_v + c_verb, hoi_img * num_v + hois[:, 2])
    iou_sub = rowwise_iou(c_sub[pair_c], gt_boxes[hoi_sub[pair_h]])
    iou_sub = np.where(gt_labels[hoi_sub[pair_h]] == 0, iou_sub, 0)
    iou_obj = rowwise_iou(c_obj[pair_c], gt_boxes[hoi_obj[pair_h]])
    iou_obj = np.where(gt_labels[hoi_obj[pair_h]] == c_lab[pair_c], iou_obj, 0)
    pair_no_obj = no_obj[pair_h]
    eligible = (iou_sub >= IOU_THRESHOLD) & (pair_no_obj | (iou_obj >= IOU_THRESHOLD))
    overlap = np.where(pair_no_obj, iou_sub, np.minimum(iou_sub, iou_obj))
    best = first_best(pair_c, pair_h, overlap, eligible, len(c_img))
    # GT identified by value: a duplicate (subject, object, verb) maps to its first copy
    is_tp = first_occurrence(best)
    # every candidate is recorded (images without GT boxes: all FP, no quirk Q3 here)
    ranked = rank_detections(c_verb, c_score, is_tp, np.maximum(npos, 1))
    ap = eleven_point_ap(ranked, THRESHOLDS["numpy_arange"])
    with_gt = npos > 0
    return {
        "mAP_all": float(np.mean(ap[with_gt])) if with_gt.any() else 0.0,
        "mAP_thesis": float(np.mean(np.where(with_gt, ap, 0.0)[list(VCOCO_THESIS_CLASSES)])),
        "ap_per_verb": {n: float(a) for n, a, g in zip(VCOCO_VERB_CLASSES, ap, with_gt) if g},
        "num_gt_per_verb": {n: int(c) for n, c in zip(VCOCO_VERB_CLASSES, npos)},
    }


__all__ = [
    "IOU_THRESHOLD",
    "NUM_ACTIONS",
    "PAIR_NAMES",
    "VcocoDetections",
    "VcocoOfficialGT",
    "detections_from_dicts",
    "detections_from_predictions",
    "detections_to_dicts",
    "evaluate_vcoco_detections",
    "evaluate_vcoco_official",
    "evaluate_vcoco_qpic",
    "extended_correct_mat",
    "image_id_of",
    "load_vcoco_official",
    "read_official_pickle",
    "write_official_pickle",
]
