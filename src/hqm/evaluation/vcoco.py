"""V-COCO evaluation (evaluation.md §2.4-2.6).

* :func:`evaluate_vcoco_official` -- v-coco ``vsrl_eval.py``: agent AP and role AP in Scenario 1 / 2.
* :func:`write_official_pickle` -- QPIC's export of the official detections pickle.
* :func:`evaluate_vcoco_qpic` -- QPIC's training-time python metric (``mAP_all`` / ``mAP_thesis``).

Detections are held as arrays (:class:`VcocoDetections`); the person assignment (best GT person of
every detection) does not depend on the action, so it is computed once for all detections. Ties in
score are ordered stably (descending score, then image / query order); the reference uses an
unstable sort, so it may order exact ties differently.
"""

from __future__ import annotations

import gzip
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.data.annotations import HoiImageAnnotation
from hqm.data.classes import (
    NUM_OBJECT_CLASSES,
    NUM_VCOCO_OBJECT_CLASSES,
    NUM_VCOCO_VERBS,
    VCOCO_ACTION_ROLES,
    VCOCO_ACTIONS,
    VCOCO_EXCLUDED_FROM_REPORT,
    VCOCO_MISSING_OBJECT,
    VCOCO_ROLE_PAIRS,
    VCOCO_THESIS_CLASSES,
    VCOCO_VERB_CLASSES,
)
from hqm.errors import HqmError
from hqm.evaluation.ap import THRESHOLDS, eleven_point_ap, rank_detections, voc_all_point_ap
from hqm.evaluation.hico import rowwise_iou
from hqm.evaluation.matching import descending_order, first_best, first_occurrence, join_on_key
from hqm.evaluation.predictions import ImagePrediction, validate_predictions
from hqm.io import atomic_write, read_json

IOU_THRESHOLD = 0.5
NUM_ACTIONS = len(VCOCO_ACTIONS)
PAIR_NAMES = tuple(f"{a}-{r}" for a, r in VCOCO_ROLE_PAIRS)
_PAIR_CLASS = np.array([VCOCO_VERB_CLASSES.index(f"{a}_{r}") for a, r in VCOCO_ROLE_PAIRS])
_PAIR_ACTION = np.array([VCOCO_ACTIONS.index(a) for a, _ in VCOCO_ROLE_PAIRS])
_CLASS_ACTION = [VCOCO_ACTIONS.index(n if n in VCOCO_ACTIONS else n.rsplit("_", 1)[0]) for n in VCOCO_VERB_CLASSES]
_TWO_ROLE_ACTIONS = {VCOCO_ACTIONS.index(a) for a, roles in VCOCO_ACTION_ROLES if len(roles) > 2}
_EXPORT_LAST_AGENTS = ("cut", "hit", "eat")  # QPIC writes these agent keys last, in this order
_PAIR_ROLE_SLOT = np.array([VCOCO_ACTION_ROLES[VCOCO_ACTIONS.index(a)][1].index(r) - 1 for a, r in VCOCO_ROLE_PAIRS])


def image_id_of(file_name: str) -> int:
    """COCO image id of a V-COCO file name (the integer after the last ``_``)."""
    try:
        return int(Path(file_name).stem.split("_")[-1])
    except ValueError:
        raise HqmError(f"image {file_name!r}: no COCO image id at the end of the file name") from None


def extended_correct_mat(correct_mat: np.ndarray) -> np.ndarray:
    """``[29, 80]`` validity matrix plus a column of ones for the missing object -> ``[29, 81]``."""
    return np.concatenate([correct_mat, np.ones((correct_mat.shape[0], 1))], axis=1)


# ---------------------------------------------------------------------------------------------
# Official ground truth
# ---------------------------------------------------------------------------------------------


@dataclass
class VcocoOfficialGT:
    """Per split image (``.ids`` order): kept COCO boxes and V-COCO labels of the persons.

    person_boxes float32 [P, 4] (all images), person_image int64 [P], actions int64 [P, 26]
    (1 / 0, -1 = not a V-COCO person -> ignored), role_boxes float32 [P, 26, 2, 4] (-1 = none).
    """

    image_ids: np.ndarray
    person_boxes: np.ndarray
    person_image: np.ndarray
    actions: np.ndarray
    role_boxes: np.ndarray


def load_vcoco_official(official_root: str | Path, split: str = "test") -> VcocoOfficialGT:
    """Read ``data/vcoco/vcoco_<split>.json``, ``data/instances_vcoco_all_2014.json`` and
    ``data/splits/vcoco_<split>.ids`` under ``official_root`` as ``vsrl_eval.py`` does."""
    root = Path(official_root) / "data"
    vsrl_path = root / "vcoco" / f"vcoco_{split}.json"
    coco_path = root / "instances_vcoco_all_2014.json"
    ids_path = root / "splits" / f"vcoco_{split}.ids"
    vsrl = read_json(vsrl_path)
    coco = read_json(coco_path)
    if not ids_path.is_file():
        raise HqmError(f"{ids_path}: file not found")
    try:
        image_ids = [int(float(x)) for x in ids_path.read_text().split()]
    except ValueError as exc:
        raise HqmError(f"{ids_path}: not a list of integer image ids ({exc})") from None
    if not isinstance(vsrl, list) or [a.get("action_name") for a in vsrl] != list(VCOCO_ACTIONS):
        raise HqmError(f"{vsrl_path}: expected the 26 V-COCO actions in the official order")
    # person ann id -> (action labels, role object ann ids [26, 2])
    person_ids = list(vsrl[0]["ann_id"])
    row_of = {aid: k for k, aid in enumerate(person_ids)}
    labels = np.zeros((len(person_ids), NUM_ACTIONS), np.int64)
    role_ann = np.zeros((len(person_ids), NUM_ACTIONS, 2), np.int64)
    for a, act in enumerate(vsrl):
        if list(act["ann_id"]) != person_ids:
            raise HqmError(f"{vsrl_path}: action {act['action_name']!r}: ann_id differs from the first action's")
        nroles = len(act["role_name"])
        roles = np.asarray(act["role_object_id"], np.int64).reshape(nroles, -1).T
        labels[:, a] = np.asarray(act["label"], np.int64)
        role_ann[:, a, : nroles - 1] = roles[:, 1:]
    images = {img["id"]: img for img in coco.get("images", [])}
    anns_of: dict[int, list] = {}
    for ann in coco.get("annotations", []):
        anns_of.setdefault(ann["image_id"], []).append(ann)
    boxes_all, image_all, actions_all, roles_all = [], [], [], []
    for i, image_id in enumerate(image_ids):
        if image_id not in images:
            raise HqmError(f"{coco_path}: image {image_id} of {ids_path.name} is missing")
        w, h = images[image_id]["width"], images[image_id]["height"]
        kept, kept_ids, classes = [], [], []
        for ann in anns_of.get(image_id, []):
            if ann.get("ignore") == 1:
                continue
            x1, y1, bw, bh = ann["bbox"]
            x2, y2 = x1 + max(0.0, bw - 1.0), y1 + max(0.0, bh - 1.0)
            x1, x2 = min(w - 1.0, max(0.0, x1)), min(w - 1.0, max(0.0, x2))
            y1, y2 = min(h - 1.0, max(0.0, y1)), min(h - 1.0, max(0.0, y2))
            if ann["area"] > 0 and x2 > x1 and y2 > y1:
                kept.append((x1, y1, x2, y2))
                kept_ids.append(ann["id"])
                classes.append(ann["category_id"])
        kept_boxes = np.asarray(kept, np.float32).reshape(-1, 4)
        index_of = {aid: k for k, aid in enumerate(kept_ids)}
        for k, aid in enumerate(kept_ids):
            if classes[k] != 1:
                continue
            acts = np.full(NUM_ACTIONS, -1, np.int64)
            roles = np.full((NUM_ACTIONS, 2, 4), -1.0, np.float32)
            row = row_of.get(aid)
            if row is not None:
                acts[:] = labels[row]
                for a, slot in zip(*np.nonzero((role_ann[row] != 0) & (labels[row][:, None] == 1))):
                    obj = index_of.get(int(role_ann[row, a, slot]))
                    if obj is None:
                        raise HqmError(f"{vsrl_path}: action {VCOCO_ACTIONS[a]!r}, person {aid}: role object "
                                       f"{role_ann[row, a, slot]} is not a kept annotation of image {image_id}")
                    roles[a, slot] = kept_boxes[obj]
            boxes_all.append(kept_boxes[k])
            image_all.append(i)
            actions_all.append(acts)
            roles_all.append(roles)
    return VcocoOfficialGT(
        np.asarray(image_ids, np.int64), np.asarray(boxes_all, np.float32).reshape(-1, 4),
        np.asarray(image_all, np.int64), np.asarray(actions_all, np.int64).reshape(-1, NUM_ACTIONS),
        np.asarray(roles_all, np.float32).reshape(-1, NUM_ACTIONS, 2, 4),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Detections (official layout as arrays)
# ---------------------------------------------------------------------------------------------


@dataclass
class VcocoDetections:
    """image_id int64 [D], person_box float32 [D, 4], agent_score float32 [D, 26],
    role_box float32 [D, 25, 4] (NaN = no object), role_score float32 [D, 25] (pair order)."""

    image_id: np.ndarray
    person_box: np.ndarray
    agent_score: np.ndarray
    role_box: np.ndarray
    role_score: np.ndarray


def detections_from_predictions(predictions: list[ImagePrediction], correct_mat: np.ndarray) -> VcocoDetections:
    """QPIC outputs -> official detections (§2.4): all queries, scores x extended validity matrix."""
    validate_predictions(predictions, "predictions", None, NUM_VCOCO_OBJECT_CLASSES, NUM_VCOCO_VERBS)
    corre = extended_correct_mat(correct_mat)
    parts = []
    for pred in predictions:
        if pred.verbs is not None:
            raise HqmError(f"image {pred.file_name!r}: V-COCO needs the qpic_postprocess layout, not triplets")
        s = (pred.verb_scores * corre[:, pred.obj_labels].T).astype(np.float32)  # [Q, 29]
        agent = np.zeros((len(pred), NUM_ACTIONS), np.float32)
        for c, a in enumerate(_CLASS_ACTION):  # two-role actions: running max from 0 (QPIC export)
            agent[:, a] = np.maximum(agent[:, a], s[:, c]) if a in _TWO_ROLE_ACTIONS else s[:, c]
        obj = np.where((pred.obj_labels == VCOCO_MISSING_OBJECT)[:, None], np.float32(np.nan), pred.obj_boxes)
        parts.append((np.full(len(pred), image_id_of(pred.file_name), np.int64), pred.sub_boxes, agent,
                      obj.astype(np.float32), s[:, _PAIR_CLASS]))
    if not parts:
        return VcocoDetections(np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
                               np.zeros((0, NUM_ACTIONS), np.float32), np.zeros((0, 25, 4), np.float32),
                               np.zeros((0, 25), np.float32))
    img, person, agent, obj, role = (np.concatenate(p) for p in zip(*parts))
    role_box = np.broadcast_to(obj[:, None, :], (len(obj), len(VCOCO_ROLE_PAIRS), 4))
    return VcocoDetections(img, person.astype(np.float32), agent, role_box, role)


def _agent_keys() -> list[tuple[str, str]]:
    return [(a, f"{a}_agent") for a in VCOCO_ACTIONS]


def detections_from_dicts(dets: list[dict], source: str = "detections") -> VcocoDetections:
    """The official pickle's list of dicts -> arrays (every dict must have every key)."""
    n = len(dets)
    out = VcocoDetections(np.zeros(n, np.int64), np.zeros((n, 4), np.float32),
                          np.zeros((n, NUM_ACTIONS), np.float32), np.zeros((n, 25, 4), np.float32),
                          np.zeros((n, 25), np.float32))
    role_keys = [f"{a}_{r}" for a, r in VCOCO_ROLE_PAIRS]
    for k, det in enumerate(dets):
        try:
            out.image_id[k] = det["image_id"]
            out.person_box[k] = det["person_box"]
            out.agent_score[k] = [det[key] for _, key in _agent_keys()]
            roles = np.asarray([det[key] for key in role_keys], np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise HqmError(f"{source}: detection {k}: missing or malformed entry {exc}") from None
        out.role_box[k], out.role_score[k] = roles[:, :4], roles[:, 4]
    return out


def detections_to_dicts(dets: VcocoDetections) -> list[dict]:
    """Arrays -> the official pickle's dicts (53 keys each, in QPIC's export order)."""
    multi = _EXPORT_LAST_AGENTS
    out = []
    person = dets.person_box.astype(np.float64).tolist()
    boxes = np.asarray(dets.role_box, np.float64).tolist()
    role = dets.role_score.astype(np.float64).tolist()
    agent = dets.agent_score.astype(np.float64).tolist()
    pair_of = {f"{a}_{r}": p for p, (a, r) in enumerate(VCOCO_ROLE_PAIRS)}
    for k in range(len(dets.image_id)):
        d = {"image_id": int(dets.image_id[k]), "person_box": person[k]}
        for name in VCOCO_VERB_CLASSES:
            if name in VCOCO_ACTIONS:  # agent-only
                d[f"{name}_agent"] = agent[k][VCOCO_ACTIONS.index(name)]
                continue
            p = pair_of[name]
            d[name] = boxes[k][p] + [role[k][p]]
            action = VCOCO_ROLE_PAIRS[p][0]
            if action not in multi:
                d[f"{action}_agent"] = agent[k][VCOCO_ACTIONS.index(action)]
        for action in multi:
            d[f"{action}_agent"] = agent[k][VCOCO_ACTIONS.index(action)]
        out.append(d)
    return out


def write_official_pickle(path: str | Path, predictions: list[ImagePrediction], correct_mat: np.ndarray) -> None:
    """Write the detections pickle (protocol 2) that v-coco's ``vsrl_eval.py`` reads; ``.gz`` = gzip."""
    dets = detections_to_dicts(detections_from_predictions(predictions, correct_mat))
    data = pickle.dumps(dets, protocol=2)
    with atomic_write(path, "wb") as handle:
        handle.write(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def read_official_pickle(path: str | Path) -> list[dict]:
    """Read an official detections pickle (optionally gzip-compressed). Only open trusted files."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise HqmError(f"{path}: not a detections pickle ({exc})") from None


# ---------------------------------------------------------------------------------------------
# Official evaluation
# ---------------------------------------------------------------------------------------------


def _official_ap(is_tp: np.ndarray, npos: int) -> float:
    """vsrl_eval's AP of detections already in descending score order: float32 counts and
    recall, all-point interpolation, float32 result."""
    if npos == 0:
        return float("nan")
    if len(is_tp) == 0:
        return 0.0
    tp = np.cumsum(is_tp, dtype=np.float32)
    fp = np.cumsum(~is_tp, dtype=np.float32)
    rec = tp / np.float32(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return float(np.float32(voc_all_point_ap(rec.astype(np.float64), prec)))


def _number(x) -> float | None:
    """A JSON-ready AP: None where the reference gives NaN (an action / pair without positives)."""
    return float(x) if np.isfinite(x) else None


def evaluate_vcoco_detections(gt: VcocoOfficialGT, dets: VcocoDetections) -> dict:
    """Official agent AP (26 actions) and role AP (25 pairs, Scenario 1 and 2).

    Where vsrl_eval gives NaN (no positive person) the AP is None; where it would crash we choose:
    a column without detections has AP 0, a detection in an image without GT persons is an FP.
    """
    by_id = np.argsort(gt.image_ids, kind="stable")
    pos = np.minimum(np.searchsorted(gt.image_ids[by_id], dets.image_id), max(len(by_id) - 1, 0))
    keep = (gt.image_ids[by_id][pos] == dets.image_id) if len(by_id) else np.zeros(len(dets.image_id), bool)
    det_img = by_id[pos][keep]  # detections of other images are never collected by vsrl_eval
    person_box = dets.person_box[keep]
    # best GT person of every detection (first max of IoU over the image's persons)
    pair_det, pair_person = join_on_key(det_img, gt.person_image)
    ov = rowwise_iou(gt.person_boxes[pair_person], person_box[pair_det], "voc")
    jmax = first_best(pair_det, pair_person, ov, np.ones(len(ov), bool), len(det_img))
    ovmax = np.full(len(det_img), -np.inf, np.float32)
    np.maximum.at(ovmax, pair_det, ov)
    # detections in images without GT persons: FP (the reference crashes there)
    ignored = np.where(jmax >= 0, np.any(gt.actions[jmax] == -1, axis=1), False)
    hit = (jmax >= 0) & (ovmax >= IOU_THRESHOLD)
    npos = (gt.actions == 1).sum(0)

    person = np.maximum(jmax, 0)

    def column_ap(score: np.ndarray, action: int, role_ok: np.ndarray | None) -> float:
        """One agent / role column. Detections sharing a best person share an image, so the
        first OK one per person in the global stable descending order is the first in its image's
        order (the reference's per-image loop): one sort gives both the TPs and the AP ranking."""
        idx = np.flatnonzero(~np.isnan(score) & ~ignored)  # recorded detections
        idx = idx[descending_order(score[idx])]
        ok = hit[idx] & (gt.actions[person[idx], action] == 1)
        if role_ok is not None:
            ok &= role_ok[idx]
        tp = ok & first_occurrence(np.where(ok, jmax[idx], -1))
        return _official_ap(tp, int(npos[action]))

    agent_score, role_score = dets.agent_score[keep], dets.role_score[keep]
    agent = np.array([column_ap(agent_score[:, a], a, None) for a in range(NUM_ACTIONS)], np.float32)
    result = {"agent_ap": _number(np.nansum(agent) / np.float32(NUM_ACTIONS) * np.float32(100))}
    aps = {1: [], 2: []}
    for p in range(len(VCOCO_ROLE_PAIRS)):
        a, slot = int(_PAIR_ACTION[p]), int(_PAIR_ROLE_SLOT[p])
        gt_role = gt.role_boxes[person, a, slot]  # [D, 4]; -1 = role not annotated
        pred_role = dets.role_box[:, p][keep]  # per pair: never materialise the broadcast [D, 25, 4]
        no_gt_role = np.all(gt_role == -1, axis=1)
        role_hit = rowwise_iou(gt_role, pred_role, "voc") >= IOU_THRESHOLD  # NaN box -> False
        # Scenario 1: an unannotated role needs a "no object" box (all 0 or all NaN); Scenario 2: any
        empty = np.all(pred_role == 0, axis=1) | np.all(np.isnan(pred_role), axis=1)
        aps[1].append(column_ap(role_score[:, p], a, np.where(no_gt_role, empty, role_hit)))
        aps[2].append(column_ap(role_score[:, p], a, no_gt_role | role_hit))
    reported = np.array([n != "-".join(VCOCO_EXCLUDED_FROM_REPORT) for n in PAIR_NAMES])
    for scenario in (1, 2):
        pair_ap = np.array(aps[scenario], np.float32)
        result[f"role_ap_per_pair_s{scenario}"] = {n: _number(x) for n, x in zip(PAIR_NAMES, pair_ap)}
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slice -> None below
            result[f"role_ap_s{scenario}_25"] = _number(np.nanmean(pair_ap) * np.float32(100))
            result[f"role_ap_s{scenario}_24"] = _number(np.nanmean(pair_ap[reported]) * np.float32(100))
    result["agent_ap_per_action"] = {n: _number(a) for n, a in zip(VCOCO_ACTIONS, agent)}
    result["num_detections"] = int(keep.sum())
    return result


def evaluate_vcoco_official(official_root: str | Path, predictions: list[ImagePrediction],
                            correct_mat: np.ndarray) -> dict:
    """Official V-COCO metrics of QPIC-layout predictions (§2.4 export + §2.5 evaluation).

    Keys: ``role_ap_s1_24``, ``role_ap_s2_24`` (reported), ``role_ap_s1_25``, ``role_ap_s2_25``,
    ``agent_ap`` (percent), ``agent_ap_per_action`` and ``role_ap_per_pair_s1/s2`` (fractions),
    ``num_detections``.
    """
    gt = load_vcoco_official(official_root)
    known = set(gt.image_ids.tolist())
    for pred in predictions:
        if image_id_of(pred.file_name) not in known:
            raise HqmError(f"predictions: image {pred.file_name!r}: not an image of the V-COCO test split")
    return evaluate_vcoco_detections(gt, detections_from_predictions(predictions, correct_mat))


# ---------------------------------------------------------------------------------------------
# QPIC's python metric
# ---------------------------------------------------------------------------------------------


def evaluate_vcoco_qpic(gt: list[HoiImageAnnotation], predictions: list[ImagePrediction],
                        correct_mat: np.ndarray, max_hois: int = 100) -> dict:
    """QPIC ``VCOCOEvaluator`` (§2.6): per verb class 11-point AP, ``mAP_all``, ``mAP_thesis``."""
    names = {img.file_name: i for i, img in enumerate(gt)}
    validate_predictions(predictions, "predictions", set(names), NUM_VCOCO_OBJECT_CLASSES, NUM_VCOCO_VERBS)
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
        c_img, c_sub, c_obj, c_lab, c_verb, c_score = (np.concatenate(p) for p in zip(*parts))
    else:
        c_img, c_lab, c_verb = (np.zeros(0, np.int64),) * 3
        c_sub = c_obj = np.zeros((0, 4), np.float32)
        c_score = np.zeros(0, np.float32)
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
    "NUM_OBJECT_CLASSES",
    "VcocoDetections",
    "VcocoOfficialGT",
    "detections_from_dicts",
    "detections_from_predictions",
    "detections_to_dicts",
    "evaluate_vcoco_detections",
    "evaluate_vcoco_official",
    "evaluate_vcoco_qpic",
    "load_vcoco_official",
    "read_official_pickle",
    "write_official_pickle",
]
