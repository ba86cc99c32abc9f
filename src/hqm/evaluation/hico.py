"""HICO-DET evaluation: QPIC's Python protocol and the official (ho-rcnn) protocol, evaluation.md §1.7-1.9.

Both protocols are one vectorised pipeline with the options of the §1.9 table:

1. per image: mask scores with the verb-object table, stable sort, optional cap (QPIC: 100);
2. join candidates with the GT HOIs of the same image and category (one searchsorted), IoU of
   all pairs at once, best GT per candidate = first maximum of min(IoU_sub, IoU_obj) >= 0.5;
3. no fallback: a candidate is a TP iff it is the first candidate (in its image's score order)
   whose best GT is that GT -- one ``np.unique`` over the ordered candidates;
4. AP of every category from one sort (``hqm.evaluation.ap``).

Only step 1 loops, over images (not detections).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from hqm.data.annotations import (
    HoiImageAnnotation,
    count_hico_train_triplets,
    known_objects_from_gt,
    read_correct_mat,
    read_hico_annotations,
    read_known_objects,
)
from hqm.data.classes import NUM_HICO_VERBS, NUM_OBJECT_CLASSES, hico_hoi_categories
from hqm.errors import HqmError
from hqm.evaluation.ap import THRESHOLDS, eleven_point_ap, max_recall, rank_detections
from hqm.evaluation.matching import first_best, first_occurrence, group_then_descending, join_on_key
from hqm.evaluation.predictions import ImagePrediction, validate_predictions

IOU_THRESHOLD = 0.5


@dataclass
class HicoGroundTruth:
    """Test GT, training-set triplet counts (rare split), validity matrix and Known-Object labels."""

    test: list[HoiImageAnnotation]
    train_counts: dict[tuple[int, int, int], int]
    correct_mat: np.ndarray  # float64 [117, 80]
    known_objects: dict[str, np.ndarray] | None = None  # file name -> object indices
    source: str = "<ground truth>"
    known_objects_source: str = "given"  # file path, or "derived_from_test_gt"


def load_hico_ground_truth(annotation_dir: str | Path, known_objects: str | Path | None = None) -> HicoGroundTruth:
    """Read ``test_hico.json``, ``trainval_hico.json``, ``corre_hico.npy`` (and KO labels if given;
    otherwise ``known_objects_test.json`` when present, else KO labels derived from the test GT)."""
    d = Path(annotation_dir)
    test = read_hico_annotations(d / "test_hico.json")
    train_counts = count_hico_train_triplets(read_hico_annotations(d / "trainval_hico.json"))
    corre = read_correct_mat(d / "corre_hico.npy", NUM_HICO_VERBS)
    ko_path = Path(known_objects) if known_objects else d / "known_objects_test.json"
    if ko_path.is_file():
        ko, ko_source = read_known_objects(ko_path), str(ko_path)
    else:  # as in the fixture; on the real data the labels come from anno.mat (known_objects_test.json)
        ko, ko_source = known_objects_from_gt(test), "derived_from_test_gt"
    return HicoGroundTruth(test, train_counts, corre, ko, str(d / "test_hico.json"), ko_source)


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


PRESETS = {
    "qpic": HicoOptions(),
    "official": HicoOptions(
        det_box_offset=1.0, max_hois_per_image=None, fp_on_images_without_gt=True, categories="all_600",
        iou_dtype="float64", intersection="voc", ap_thresholds="matlab_colon", stable_sort=True,
        drop_invalid=True,
    ),
}  # fmt: skip


@dataclass
class _Categories:
    keys: list[tuple[int, int, int]]  # (subject label, object index, verb index)
    lookup: np.ndarray  # int64 [80, 117] (object, verb) -> category of a person subject, -1 = none
    hoi_ids: list[int | None] = field(default_factory=list)


def _build_categories(gt: HicoGroundTruth, gt_triplets: np.ndarray, all_600: bool) -> _Categories:
    lookup = np.full((NUM_OBJECT_CLASSES, NUM_HICO_VERBS), -1, dtype=np.int64)
    hoi_of = {(c.object_index, c.verb_index): c.hoi_id for c in hico_hoi_categories()}
    if all_600:
        keys = [(0, c.object_index, c.verb_index) for c in hico_hoi_categories()]
    else:  # distinct test triplets in order of first appearance
        _, first = np.unique(gt_triplets, axis=0, return_index=True)
        keys = [tuple(row) for row in gt_triplets[np.sort(first)].tolist()]
    for k, (s, o, v) in enumerate(keys):
        if s == 0:
            lookup[o, v] = k
    return _Categories(keys, lookup, [hoi_of.get((o, v)) if s == 0 else None for s, o, v in keys])


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


def _select_qpic_layout(batch: list[ImagePrediction], corre: np.ndarray, cap: int | None, drop_invalid: bool):
    """Candidate selection for a batch of QPIC-layout images with equal [N, C] score shapes.

    Per image: (query, verb) pairs of a stable descending sort of the masked scores, first ``cap``
    (invalid pairs dropped first if asked), returned in flat (query-major, verb-minor) order; the
    caller's global sort orders them. One ``np.partition`` over the batch replaces per-image sorts:
    keep what is above the cap-th largest value, then its ties in index order (as a stable sort).
    Returns (image position in batch [K], row [K], verb [K]).
    """
    scores = np.stack([p.verb_scores for p in batch])  # [B, N, C]
    labels = np.stack([p.obj_labels for p in batch])  # [B, N]
    b, n, c = scores.shape
    valid = corre[:, labels].transpose(1, 2, 0).reshape(b, n * c) > 0  # [B, N*C]
    masked = (scores * corre[:, labels].transpose(1, 2, 0)).reshape(b, n * c)
    keep = valid if drop_invalid else np.ones_like(valid)
    if cap is not None and n * c > cap and masked.min() >= 0:
        return _select_positive_first(masked, keep, cap, c)
    if cap is not None and n * c > cap:
        ranked = np.where(keep, masked, -np.inf)
        kth = np.partition(ranked, n * c - cap, axis=1)[:, n * c - cap][:, None]
        above = ranked > kth
        ties = (ranked == kth) & keep
        need = cap - above.sum(1, keepdims=True)
        keep = above | (ties & (np.cumsum(ties, axis=1) <= need))
    image, flat = np.nonzero(keep)
    rows, verbs = np.divmod(flat.astype(np.int32), np.int32(c))
    return image, rows, verbs


def _select_positive_first(masked: np.ndarray, keep: np.ndarray, cap: int, num_verbs: int):
    """:func:`_select_qpic_layout` for non-negative scores: sort only the positive masked scores
    (a few percent of the pairs: most verb-object pairs are invalid), then fill images with fewer
    than ``cap`` positives with their zero-score pairs in index order (a stable sort's order)."""
    image, flat = np.nonzero(masked > 0)
    order = group_then_descending(image, masked[image, flat])
    image, flat = image[order], flat[order]
    starts = np.searchsorted(image, np.arange(len(masked) + 1))
    top = np.arange(len(image)) - starts[image] < cap
    image, flat = image[top], flat[top]
    counts = np.bincount(image, minlength=len(masked))
    short = np.flatnonzero(counts < cap)
    if len(short):  # rows (images), not detections
        fill = [np.flatnonzero((masked[b] == 0) & keep[b])[: cap - counts[b]] for b in short.tolist()]
        image = np.concatenate([image, np.repeat(short, [len(f) for f in fill])])
        flat = np.concatenate([flat, *fill])
        order = np.argsort(image, kind="stable")
        image, flat = image[order], flat[order]
    rows, verbs = np.divmod(flat.astype(np.int32), np.int32(num_verbs))
    return image, rows, verbs


def _gather_candidates(gt: HicoGroundTruth, preds: dict[str, ImagePrediction], cats: _Categories,
                       opt: HicoOptions, known: np.ndarray | None):
    """Mask, per-image cap (first ``cap`` of a stable descending sort), category lookup.

    Returns image [K], query [K], category [K], masked score float32 [K] per candidate, in image
    order and, within an image, in input order (or score order where the cap had to sort), and
    the query boxes sub [Q, 4], obj [Q, 4] that ``query`` indexes (boxes are not copied per
    candidate: a QPIC-layout query has one box pair for all its verbs). Triplet-layout images are
    taken as they are; QPIC-layout images are reduced to their selected (query, verb) pairs in
    batches (the N x C expansion of all images would not fit in memory).
    """
    corre = gt.correct_mat.astype(np.float32)
    cols: list[list[np.ndarray]] = [[], [], [], [], [], []]  # sub, obj | query, label, verb, score
    image_of: list[int] = []
    sizes: list[int] = []
    num_queries = 0
    qpic_layout: dict[tuple[int, ...], list[tuple[int, ImagePrediction]]] = {}

    def add(i: int, pred: ImagePrediction, rows, verbs, scores) -> None:
        nonlocal num_queries
        for col, arr in zip(cols, (pred.sub_boxes, pred.obj_boxes, rows + num_queries, pred.obj_labels[rows],
                                   verbs, scores)):
            col.append(arr)
        num_queries += len(pred.sub_boxes)
        image_of.append(i)
        sizes.append(len(rows))

    def flush(batch: list[tuple[int, ImagePrediction]]) -> None:
        preds_b = [p for _, p in batch]
        pos, rows, verbs = _select_qpic_layout(preds_b, corre, opt.max_hois_per_image, opt.drop_invalid)
        bounds = np.searchsorted(pos, np.arange(len(batch) + 1))
        for k, (i, p) in enumerate(batch):
            r, v = rows[bounds[k]:bounds[k + 1]], verbs[bounds[k]:bounds[k + 1]]
            add(i, p, r, v, p.verb_scores[r, v])

    triplets: list[tuple[int, ImagePrediction]] = []
    for i, img in enumerate(gt.test):
        pred = preds.get(img.file_name)
        if pred is None or len(pred) == 0:
            continue
        if len(img.boxes) == 0 and not opt.fp_on_images_without_gt:
            continue  # quirk Q3: candidates of images without GT boxes are never recorded
        if pred.verbs is None:
            batch = qpic_layout.setdefault(pred.verb_scores.shape, [])
            batch.append((i, pred))
            if len(batch) == 128:
                flush(batch)
                batch.clear()
        else:
            triplets.append((i, pred))
    for batch in qpic_layout.values():
        if batch:
            flush(batch)
    if triplets:  # one block: every triplet is its own query
        total = sum(len(p) for _, p in triplets)
        blocks = (tuple(p.sub_boxes for _, p in triplets), tuple(p.obj_boxes for _, p in triplets),
                  (np.arange(num_queries, num_queries + total),), tuple(p.obj_labels for _, p in triplets),
                  tuple(p.verbs for _, p in triplets), tuple(p.verb_scores for _, p in triplets))
        for col, block in zip(cols, blocks):
            col.extend(block)
        image_of.extend(i for i, _ in triplets)
        sizes.extend(len(p) for _, p in triplets)
    if not image_of:
        z, box = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        return z, z, z, np.zeros(0, np.float32), box, box
    c_img = np.repeat(np.asarray(image_of, np.int32), sizes)
    q_sub, q_obj, c_query, labels, verbs, scores = (np.concatenate(c) for c in cols)
    if qpic_layout and triplets:  # both layouts in one list: back to image order
        perm = np.argsort(c_img, kind="stable")
        c_img, c_query, labels, verbs, scores = (x[perm] for x in (c_img, c_query, labels, verbs, scores))
    masked = scores * corre[verbs, labels]
    del scores

    def subset(index, *arrays):  # no copy when nothing is dropped or reordered
        return arrays if index is None else tuple(x[index] for x in arrays)

    if opt.drop_invalid:
        valid = corre[verbs, labels] > 0
        c_img, c_query, labels, verbs, masked = subset(None if valid.all() else valid, c_img, c_query, labels,
                                                       verbs, masked)
    cap = opt.max_hois_per_image
    if cap is not None and len(c_img) and np.bincount(c_img).max() > cap:
        order = group_then_descending(c_img, masked)  # per image, descending score, stable
        sorted_img = c_img[order]
        starts = np.searchsorted(sorted_img, np.arange(len(gt.test)), side="left")
        order = order[np.arange(len(order)) - starts[sorted_img] < cap]
        c_img, c_query, labels, verbs, masked = subset(order, c_img, c_query, labels, verbs, masked)
    cat = cats.lookup[labels, verbs]
    keep = cat >= 0
    if known is not None:
        keep &= known[c_img, labels]
    c_img, c_query, cat, masked = subset(None if keep.all() else keep, c_img, c_query, cat, masked)
    return c_img, c_query, cat, masked, q_sub, q_obj


def evaluate_hico(gt: HicoGroundTruth, predictions: list[ImagePrediction],
                  protocol: Literal["qpic", "official"] = "qpic",
                  setting: Literal["default", "known_object"] = "default", **options) -> dict:
    """Evaluate HICO-DET predictions; ``options`` override fields of the protocol's preset.

    Returns ``mAP``, ``mAP rare``, ``mAP non-rare``, ``mean max recall`` (fractions), counts and
    ``per_category`` (one row per evaluated category, in category order). A mean over an empty
    split is reported as 0.0 (``num_categories_rare`` / ``_non_rare`` tell); with ``all_600`` a
    category without test GT has AP 0 and recall 0 and counts in the means, as in the official code.
    """
    if protocol not in PRESETS:
        raise HqmError(f"evaluate_hico: unknown protocol {protocol!r} (qpic, official)")
    if setting not in ("default", "known_object"):
        raise HqmError(f"evaluate_hico: unknown setting {setting!r} (default, known_object)")
    try:
        opt = replace(PRESETS[protocol], **options)
    except TypeError as exc:
        raise HqmError(f"evaluate_hico: {exc}") from None
    if opt.unlisted_images == "no_gt":
        listed = {img.file_name for img in gt.test}
        extra = [HoiImageAnnotation(p.file_name, np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros((0, 3), np.int64))
                 for p in predictions if p.file_name not in listed]
        gt = replace(gt, test=gt.test + extra)
    names = {img.file_name: i for i, img in enumerate(gt.test)}
    validate_predictions(predictions, "predictions", set(names), NUM_OBJECT_CLASSES, NUM_HICO_VERBS)
    preds = {p.file_name: p for p in predictions}

    # --- ground truth tables -------------------------------------------------------------------
    box_offsets = np.cumsum([0] + [len(img.boxes) for img in gt.test])
    gt_boxes = np.concatenate([img.boxes for img in gt.test] + [np.zeros((0, 4))]).astype(opt.iou_dtype)
    gt_labels = np.concatenate([img.labels for img in gt.test] + [np.zeros(0, np.int64)])
    hoi_img = np.concatenate([np.full(len(img.hois), i, np.int64) for i, img in enumerate(gt.test)] + [np.zeros(0, np.int64)])
    hois = np.concatenate([img.hois for img in gt.test] + [np.zeros((0, 3), np.int64)])
    hoi_sub = hois[:, 0] + box_offsets[hoi_img]
    hoi_obj = hois[:, 1] + box_offsets[hoi_img]
    triplets = np.stack([gt_labels[hoi_sub], gt_labels[hoi_obj], hois[:, 2]], 1)
    cats = _build_categories(gt, triplets, opt.categories == "all_600")
    num_cats = len(cats.keys)
    key_index = {k: c for c, k in enumerate(cats.keys)}
    hoi_cat = np.array([key_index.get(k, -1) for k in map(tuple, triplets.tolist())], dtype=np.int64)
    npos = np.bincount(hoi_cat[hoi_cat >= 0], minlength=num_cats)

    known = None
    if setting == "known_object":
        if gt.known_objects is None:
            raise HqmError(f"{gt.source}: the Known-Object setting needs known-object labels")
        known = np.zeros((len(gt.test), NUM_OBJECT_CLASSES), dtype=bool)
        for i, img in enumerate(gt.test):
            objs = gt.known_objects.get(img.file_name)
            if objs is not None:
                known[i, objs] = True

    # --- candidates ------------------------------------------------------------------------------
    c_img, c_query, c_cat, c_score, q_sub, q_obj = _gather_candidates(gt, preds, cats, opt, known)
    q_sub, q_obj = q_sub.astype(opt.iou_dtype), q_obj.astype(opt.iou_dtype)
    if opt.round_boxes:
        q_sub, q_obj = _round_matlab(q_sub), _round_matlab(q_obj)
    if opt.det_box_offset:
        off = np.asarray(opt.det_box_offset, dtype=opt.iou_dtype)
        q_sub, q_obj = q_sub + off, q_obj + off

    # --- candidate x GT-HOI pairs of the same image and category; best GT = first max ----------
    valid_hoi = np.nonzero(hoi_cat >= 0)[0]
    c_key = c_img * num_cats + c_cat
    pair_cand, pair_pos = join_on_key(c_key, hoi_img[valid_hoi] * num_cats + hoi_cat[valid_hoi])
    num_cand = len(c_key)
    del c_key
    pair_hoi = valid_hoi[pair_pos]
    pair_query = c_query[pair_cand]
    iou_sub = rowwise_iou(q_sub[pair_query], gt_boxes[hoi_sub[pair_hoi]], opt.intersection)
    iou_obj = rowwise_iou(q_obj[pair_query], gt_boxes[hoi_obj[pair_hoi]], opt.intersection)
    # class-aware IoU: the subject of every candidate is a person (label 0)
    iou_sub = np.where(gt_labels[hoi_sub[pair_hoi]] == 0, iou_sub, 0)
    matched = (iou_sub >= IOU_THRESHOLD) & (iou_obj >= IOU_THRESHOLD)
    best_hoi = first_best(pair_cand, pair_hoi, np.minimum(iou_sub, iou_obj), matched, num_cand)
    # no fallback: TP iff first candidate (image score order) whose best GT is that GT
    # in the ranking (category, descending score, input order), candidates sharing a best GT
    # (same image, same category) appear in their image's stable score order
    tp_order = group_then_descending(c_cat, c_score)
    is_tp = np.zeros(num_cand, dtype=bool)
    is_tp[tp_order] = first_occurrence(best_hoi[tp_order])

    # --- AP ---------------------------------------------------------------------------------------
    ranked = rank_detections(c_cat, c_score, is_tp, np.maximum(npos, 1), stable=opt.stable_sort,
                             order=tp_order if opt.stable_sort else None)
    ap = eleven_point_ap(ranked, THRESHOLDS[opt.ap_thresholds])
    rec = max_recall(ranked)
    ap[npos == 0], rec[npos == 0] = 0.0, 0.0
    num_det = np.bincount(c_cat, minlength=num_cats)
    num_tp = np.bincount(c_cat[is_tp], minlength=num_cats)
    without = sum(1 for img in gt.test if len(preds.get(img.file_name, ())) == 0)
    result = _summary(gt, cats, opt, ap, rec, npos, num_det, num_tp, without)
    if setting == "known_object":
        result["known_objects_source"] = gt.known_objects_source
    return result


def _summary(gt, cats: _Categories, opt: HicoOptions, ap, rec, npos, num_det, num_tp, without_preds: int) -> dict:
    if opt.categories == "all_600":  # official rule: fewer than 10 training instances, 0 included
        counts = np.array([gt.train_counts.get(k, 0) for k in cats.keys])
        split = np.where(counts < 10, "rare", "non-rare")
    else:  # QPIC: only triplets seen in training are rare / non-rare
        counts = np.array([gt.train_counts.get(k, -1) for k in cats.keys])
        split = np.where(counts < 0, "test-only", np.where(counts < 10, "rare", "non-rare"))
    rare, non_rare = split == "rare", split == "non-rare"

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if len(x) else 0.0

    per_category = [
        {"triplet": list(k), "hoi_id": h, "split": str(s), "ap": float(a), "max_recall": float(r),
         "num_gt": int(n), "num_det": int(d), "num_tp": int(t)}
        for k, h, s, a, r, n, d, t in zip(cats.keys, cats.hoi_ids, split, ap, rec, npos, num_det, num_tp)
    ]  # fmt: skip
    names = {img.file_name for img in gt.test}
    return {
        "mAP": mean(ap), "mAP rare": mean(ap[rare]), "mAP non-rare": mean(ap[non_rare]),
        "mean max recall": mean(rec),
        "num_categories_evaluated": len(cats.keys), "num_categories_rare": int(rare.sum()),
        "num_categories_non_rare": int(non_rare.sum()), "num_test_images": len(names),
        "num_test_images_without_predictions": without_preds,
        "options": {k: getattr(opt, k) for k in opt.__dataclass_fields__},
        "per_category": per_category,
    }  # fmt: skip
