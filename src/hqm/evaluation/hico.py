"""HICO-DET evaluation: QPIC's Python protocol and the official (ho-rcnn) protocol, evaluation.md §1.7-1.9.

Both protocols are one vectorised pipeline with the options of the §1.9 table:

1. per image: mask scores with the verb-object table, stable sort, optional cap (QPIC: 100);
2. join candidates with the GT HOIs of the same image and category (one searchsorted), IoU of
   all pairs at once, best GT per candidate = first maximum of min(IoU_sub, IoU_obj) >= 0.5;
3. no fallback: a candidate is a TP iff it is the first candidate (in its image's score order)
   whose best GT is that GT -- one ``np.unique`` over the ordered candidates;
4. AP of every category from one sort (``hqm.evaluation.ap``).

Only step 1 loops, over images (not detections). Step 1 lives in :mod:`hqm.evaluation.hico_candidates`,
the ground-truth tables, categories and Known-Object mask in :mod:`hqm.evaluation.hico_gt`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from hqm.data.classes import NUM_HICO_VERBS, NUM_OBJECT_CLASSES
from hqm.errors import HqmError
from hqm.evaluation.ap import THRESHOLDS, all_point_ap, eleven_point_ap, max_recall, rank_detections
from hqm.evaluation.hico_candidates import gather_candidates
from hqm.evaluation.hico_gt import (
    Categories,
    GtTables,
    HicoGroundTruth,
    build_categories,
    gt_tables,
    known_object_mask,
    load_hico_ground_truth,
    with_unlisted_images,
)
from hqm.evaluation.matching import first_best, first_occurrence, group_then_descending, join_on_key
from hqm.evaluation.predictions import ImagePrediction, validate_predictions

IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class HicoOptions:
    """The knobs of evaluation.md §1.9 (defaults = QPIC protocol)."""

    det_box_offset: float = 0.0  # official: +1 (detections are 0-based, GT 1-based)
    max_hois_per_image: int | None = 100
    fp_on_images_without_gt: bool = False  # quirk Q3 when False
    categories: Literal["test_gt", "all_600"] = "test_gt"  # all_600 also selects the official rare rule
    iou_dtype: Literal["float32", "float64"] = "float32"
    intersection: Literal["qpic", "voc"] = "qpic"  # qpic: empty if ix1 >= ix2; voc: empty if iw <= 0
    ap_thresholds: Literal["numpy_arange", "matlab_colon"] = "numpy_arange"
    stable_sort: bool = True  # the reference's argsort(-score) is unstable; fixtures have no ties
    round_boxes: bool = False  # round detections to integers (MATLAB round) before the offset
    drop_invalid: bool = False  # drop (verb, object) pairs outside the table instead of scoring 0
    # predictions for images the GT file does not list (test_hico.json may omit the 112 test images
    # without visible HOIs): "error", or "no_gt" = evaluate them as images without any GT
    unlisted_images: Literal["error", "no_gt"] = "error"
    # "all": the protocol's categories as published; "dataset": only those the dataset's
    # corre_hico.npy allows (a synthetic dataset defines a subset of the 600)
    category_scope: Literal["all", "dataset"] = "all"
    # "eleven_point": both published protocols; "all_point": VOC all-point AP, a named option for
    # the in-training curve on few categories (docs/demo.md, "What moves the end of a curve")
    ap_interpolation: Literal["eleven_point", "all_point"] = "eleven_point"


PRESETS = {
    "qpic": HicoOptions(),
    "official": HicoOptions(
        det_box_offset=1.0, max_hois_per_image=None, fp_on_images_without_gt=True, categories="all_600",
        iou_dtype="float64", intersection="voc", ap_thresholds="matlab_colon", stable_sort=True,
        drop_invalid=True,
    ),
}  # fmt: skip


def rowwise_iou(a: np.ndarray, b: np.ndarray, rule: str = "qpic") -> np.ndarray:
    """Row-wise IoU with the +1 pixel convention; a, b [P, 4] of one dtype -> [P]."""
    one = a.dtype.type(1)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    ix1, iy1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    ix2, iy2 = np.minimum(a[:, 2], b[:, 2]), np.minimum(a[:, 3], b[:, 3])
    iw, ih = ix2 - ix1 + one, iy2 - iy1 + one
    empty = (ix1 >= ix2) | (iy1 >= iy2) if rule == "qpic" else (iw <= 0) | (ih <= 0)
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_a + area_b - inter)
    return np.where(empty, a.dtype.type(0), iou)


def _round_matlab(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def resolve_options(protocol: str, setting: str, options: dict) -> HicoOptions:
    """The protocol's preset with ``options`` applied; unknown names or values are an HqmError."""
    if protocol not in PRESETS:
        raise HqmError(f"evaluate_hico: unknown protocol {protocol!r} (qpic, official)")
    if setting not in ("default", "known_object"):
        raise HqmError(f"evaluate_hico: unknown setting {setting!r} (default, known_object)")
    try:
        opt = replace(PRESETS[protocol], **options)
    except TypeError as exc:
        raise HqmError(f"evaluate_hico: {exc}") from None
    cap = opt.max_hois_per_image
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise HqmError(f"evaluate_hico: max_hois_per_image must be a positive integer or None, got {cap!r}")
    if opt.category_scope not in ("all", "dataset"):
        raise HqmError(f"evaluate_hico: category_scope {opt.category_scope!r} is not 'all' or 'dataset'")
    return opt


def evaluate_hico(gt: HicoGroundTruth, predictions: list[ImagePrediction],
                  protocol: Literal["qpic", "official"] = "qpic",
                  setting: Literal["default", "known_object"] = "default", source: str = "predictions",
                  **options) -> dict:
    """Evaluate HICO-DET predictions; ``options`` override fields of the protocol's preset.

    Returns ``mAP``, ``mAP rare``, ``mAP non-rare``, ``mean max recall`` (fractions), counts and
    ``per_category`` (one row per evaluated category, in category order). A mean over an empty
    split is reported as 0.0 (``num_categories_rare`` / ``_non_rare`` tell); with ``all_600`` a
    category without test GT has AP 0 and recall 0 and counts in the means, as in the official code.
    ``source`` names the predictions (a file) in error messages.
    """
    opt = resolve_options(protocol, setting, options)
    if opt.unlisted_images == "no_gt":
        gt = with_unlisted_images(gt, [p.file_name for p in predictions])
    validate_predictions(predictions, source, {img.file_name for img in gt.test}, NUM_OBJECT_CLASSES,
                         NUM_HICO_VERBS)
    preds = {p.file_name: p for p in predictions}
    tables = gt_tables(gt.test, opt.iou_dtype)
    cats = build_categories(tables.triplets, opt.categories == "all_600",
                            gt.correct_mat if opt.category_scope == "dataset" else None)
    hoi_cat = cats.index_of(tables.triplets)
    npos = np.bincount(hoi_cat[hoi_cat >= 0], minlength=len(cats.keys))
    known = known_object_mask(gt) if setting == "known_object" else None
    c_img, c_query, c_cat, c_score, q_sub, q_obj = gather_candidates(gt.test, preds, gt.correct_mat, cats, opt,
                                                                     known)
    q_sub, q_obj = _query_boxes(q_sub, opt), _query_boxes(q_obj, opt)
    is_tp, tp_order = _match(tables, hoi_cat, len(cats.keys), c_img, c_query, c_cat, c_score, q_sub, q_obj, opt)
    ranked = rank_detections(c_cat, c_score, is_tp, np.maximum(npos, 1), stable=opt.stable_sort,
                             order=tp_order if opt.stable_sort else None)
    if opt.ap_interpolation == "all_point":
        ap = all_point_ap(ranked)
    else:
        ap = eleven_point_ap(ranked, THRESHOLDS[opt.ap_thresholds])
    rec = max_recall(ranked)
    ap[npos == 0], rec[npos == 0] = 0.0, 0.0
    num_det = np.bincount(c_cat, minlength=len(cats.keys))
    num_tp = np.bincount(c_cat[is_tp], minlength=len(cats.keys))
    without = sum(1 for img in gt.test if len(preds.get(img.file_name, ())) == 0)
    result = _summary(gt, cats, opt, ap, rec, npos, num_det, num_tp, without)
    if setting == "known_object":
        result["known_objects_source"] = gt.known_objects_source
    return result


def _query_boxes(boxes: np.ndarray, opt: HicoOptions) -> np.ndarray:
    """Detection boxes [Q, 4] in the IoU dtype, rounded and shifted as the protocol asks."""
    boxes = boxes.astype(opt.iou_dtype)
    if opt.round_boxes:
        boxes = _round_matlab(boxes)
    if opt.det_box_offset:
        boxes = boxes + np.asarray(opt.det_box_offset, dtype=opt.iou_dtype)
    return boxes


def _match(tables: GtTables, hoi_cat: np.ndarray, num_cats: int, c_img, c_query, c_cat, c_score,
           q_sub: np.ndarray, q_obj: np.ndarray, opt: HicoOptions) -> tuple[np.ndarray, np.ndarray]:
    """TP flag of every candidate [K] and the (category, descending score, input order) ranking [K].

    Candidates are joined with the GT HOIs of the same image and category; the best GT of a
    candidate is the first maximum of min(IoU_sub, IoU_obj) among pairs with both IoUs >= 0.5.
    """
    valid_hoi = np.nonzero(hoi_cat >= 0)[0]
    c_key = c_img * num_cats + c_cat
    pair_cand, pair_pos = join_on_key(c_key, tables.hoi_image[valid_hoi] * num_cats + hoi_cat[valid_hoi])
    num_cand = len(c_key)
    del c_key
    pair_hoi = valid_hoi[pair_pos]
    pair_query = c_query[pair_cand]
    gt_sub, gt_obj = tables.hoi_sub[pair_hoi], tables.hoi_obj[pair_hoi]
    iou_sub = rowwise_iou(q_sub[pair_query], tables.boxes[gt_sub], opt.intersection)
    iou_obj = rowwise_iou(q_obj[pair_query], tables.boxes[gt_obj], opt.intersection)
    # class-aware IoU: the subject of every candidate is a person (label 0)
    iou_sub = np.where(tables.labels[gt_sub] == 0, iou_sub, 0)
    matched = (iou_sub >= IOU_THRESHOLD) & (iou_obj >= IOU_THRESHOLD)
    best_hoi = first_best(pair_cand, pair_hoi, np.minimum(iou_sub, iou_obj), matched, num_cand)
    # no fallback: TP iff first candidate (image score order) whose best GT is that GT
    # in the ranking (category, descending score, input order), candidates sharing a best GT
    # (same image, same category) appear in their image's stable score order
    tp_order = group_then_descending(c_cat, c_score)
    is_tp = np.zeros(num_cand, dtype=bool)
    is_tp[tp_order] = first_occurrence(best_hoi[tp_order])
    return is_tp, tp_order


def _mean(x: np.ndarray) -> float:
    """Mean of ``x``; 0.0 for an empty split."""
    return float(np.mean(x)) if len(x) else 0.0


def _summary(gt, cats: Categories, opt: HicoOptions, ap, rec, npos, num_det, num_tp, without_preds: int) -> dict:
    """Means over the splits, counts, options and the per-category rows of one evaluation."""
    if opt.categories == "all_600":  # official rule: fewer than 10 training instances, 0 included
        counts = np.array([gt.train_counts.get(k, 0) for k in cats.keys])
        split = np.where(counts < 10, "rare", "non-rare")
    else:  # QPIC: only triplets seen in training are rare / non-rare
        counts = np.array([gt.train_counts.get(k, -1) for k in cats.keys])
        split = np.where(counts < 0, "test-only", np.where(counts < 10, "rare", "non-rare"))
    rare, non_rare = split == "rare", split == "non-rare"

    per_category = [
        {"triplet": list(k), "hoi_id": h, "split": str(s), "ap": float(a), "max_recall": float(r),
         "num_gt": int(n), "num_det": int(d), "num_tp": int(t)}
        for k, h, s, a, r, n, d, t in zip(cats.keys, cats.hoi_ids, split, ap, rec, npos, num_det, num_tp)
    ]  # fmt: skip
    names = {img.file_name for img in gt.test}
    return {
        "mAP": _mean(ap), "mAP rare": _mean(ap[rare]), "mAP non-rare": _mean(ap[non_rare]),
        "mean max recall": _mean(rec),
        "num_categories_evaluated": len(cats.keys), "num_categories_rare": int(rare.sum()),
        "num_categories_non_rare": int(non_rare.sum()), "num_test_images": len(names),
        "num_test_images_without_predictions": without_preds, "category_scope": opt.category_scope,
        "options": {k: getattr(opt, k) for k in opt.__dataclass_fields__},
        "per_category": per_category,
    }  # fmt: skip


__all__ = [
    "PRESETS",
    "HicoGroundTruth",
    "HicoOptions",
    "evaluate_hico",
    "load_hico_ground_truth",
    "resolve_options",
    "rowwise_iou",
]
