"""V-COCO official evaluation: v-coco's ``vsrl_eval.py`` ground truth, agent AP and role AP (evaluation.md §2.5).

The person assignment (best GT person of every detection) does not depend on the action, so it is
computed once for all detections. Ties in score are ordered stably (descending score, then image /
query order); the reference uses an unstable sort, so it may order exact ties differently.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.data.classes import (
    VCOCO_ACTION_ROLES,
    VCOCO_ACTIONS,
    VCOCO_EXCLUDED_FROM_REPORT,
    VCOCO_ROLE_PAIRS,
)
from hqm.errors import HqmError
from hqm.evaluation.ap import voc_all_point_ap
from hqm.evaluation.hico import rowwise_iou
from hqm.evaluation.matching import descending_order, first_best, first_occurrence, join_on_key
from hqm.evaluation.predictions import ImagePrediction
from hqm.evaluation.vcoco_pickle import (
    NUM_ACTIONS,
    VcocoDetections,
    detections_from_predictions,
    image_id_of,
)
from hqm.io import read_json

IOU_THRESHOLD = 0.5
PAIR_NAMES = tuple(f"{a}-{r}" for a, r in VCOCO_ROLE_PAIRS)
_PAIR_ACTION = np.array([VCOCO_ACTIONS.index(a) for a, _ in VCOCO_ROLE_PAIRS])
_PAIR_ROLE_SLOT = np.array([VCOCO_ACTION_ROLES[VCOCO_ACTIONS.index(a)][1].index(r) - 1 for a, r in VCOCO_ROLE_PAIRS])


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


def _read_split_ids(ids_path: Path) -> list[int]:
    """COCO image ids of ``vcoco_<split>.ids`` (one number per line)."""
    if not ids_path.is_file():
        raise HqmError(f"{ids_path}: file not found")
    try:
        return [int(float(x)) for x in ids_path.read_text().split()]
    except ValueError as exc:
        raise HqmError(f"{ids_path}: not a list of integer image ids ({exc})") from None


def _read_vsrl(vsrl: object, vsrl_path: Path) -> tuple[dict[int, int], np.ndarray, np.ndarray]:
    """``vcoco_<split>.json`` -> (person ann id -> row, labels int64 [P, 26], role object ann ids [P, 26, 2])."""
    if not isinstance(vsrl, list) or [a.get("action_name") for a in vsrl] != list(VCOCO_ACTIONS):
        raise HqmError(f"{vsrl_path}: expected the 26 V-COCO actions in the official order")
    person_ids = list(vsrl[0]["ann_id"])
    labels = np.zeros((len(person_ids), NUM_ACTIONS), np.int64)
    role_ann = np.zeros((len(person_ids), NUM_ACTIONS, 2), np.int64)
    for a, act in enumerate(vsrl):
        if list(act["ann_id"]) != person_ids:
            raise HqmError(f"{vsrl_path}: action {act['action_name']!r}: ann_id differs from the first action's")
        nroles = len(act["role_name"])
        roles = np.asarray(act["role_object_id"], np.int64).reshape(nroles, -1).T
        labels[:, a] = np.asarray(act["label"], np.int64)
        role_ann[:, a, : nroles - 1] = roles[:, 1:]
    return {aid: k for k, aid in enumerate(person_ids)}, labels, role_ann


def _kept_annotations(anns: list[dict], width: float, height: float) -> tuple[np.ndarray, list[int], list[int]]:
    """COCO annotations of one image that vsrl_eval keeps: boxes xyxy float32 [K, 4] (clipped,
    inclusive), their ann ids and category ids."""
    kept, kept_ids, classes = [], [], []
    for ann in anns:
        if ann.get("ignore") == 1:
            continue
        x1, y1, bw, bh = ann["bbox"]
        x2, y2 = x1 + max(0.0, bw - 1.0), y1 + max(0.0, bh - 1.0)
        x1, x2 = min(width - 1.0, max(0.0, x1)), min(width - 1.0, max(0.0, x2))
        y1, y2 = min(height - 1.0, max(0.0, y1)), min(height - 1.0, max(0.0, y2))
        if ann["area"] > 0 and x2 > x1 and y2 > y1:
            kept.append((x1, y1, x2, y2))
            kept_ids.append(ann["id"])
            classes.append(ann["category_id"])
    return np.asarray(kept, np.float32).reshape(-1, 4), kept_ids, classes


def load_vcoco_official(official_root: str | Path, split: str = "test") -> VcocoOfficialGT:
    """Read ``data/vcoco/vcoco_<split>.json``, ``data/instances_vcoco_all_2014.json`` and
    ``data/splits/vcoco_<split>.ids`` under ``official_root`` as ``vsrl_eval.py`` does."""
    root = Path(official_root) / "data"
    vsrl_path = root / "vcoco" / f"vcoco_{split}.json"
    coco_path = root / "instances_vcoco_all_2014.json"
    ids_path = root / "splits" / f"vcoco_{split}.ids"
    vsrl = read_json(vsrl_path)
    coco = read_json(coco_path)
    image_ids = _read_split_ids(ids_path)
    row_of, labels, role_ann = _read_vsrl(vsrl, vsrl_path)
    images = {img["id"]: img for img in coco.get("images", [])}
    anns_of: dict[int, list] = {}
    for ann in coco.get("annotations", []):
        anns_of.setdefault(ann["image_id"], []).append(ann)
    boxes_all, image_all, actions_all, roles_all = [], [], [], []
    for i, image_id in enumerate(image_ids):
        if image_id not in images:
            raise HqmError(f"{coco_path}: image {image_id} of {ids_path.name} is missing")
        kept_boxes, kept_ids, classes = _kept_annotations(anns_of.get(image_id, []), images[image_id]["width"],
                                                          images[image_id]["height"])
        index_of = {aid: k for k, aid in enumerate(kept_ids)}
        for k, aid in enumerate(kept_ids):
            if classes[k] != 1:
                continue
            acts = np.full(NUM_ACTIONS, -1, np.int64)  # -1: not a V-COCO person
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


@dataclass
class _PersonAssignment:
    """Best GT person of every collected detection [D]: ``person`` (its row, 0 where none),
    ``jmax`` (-1 where none), ``hit`` (IoU >= 0.5), ``ignored`` (a non-V-COCO person: skipped)."""

    person: np.ndarray
    jmax: np.ndarray
    hit: np.ndarray
    ignored: np.ndarray


def _assign_persons(gt: VcocoOfficialGT, det_img: np.ndarray, person_box: np.ndarray) -> _PersonAssignment:
    """First maximum of IoU over the GT persons of each detection's image (action-independent)."""
    pair_det, pair_person = join_on_key(det_img, gt.person_image)
    ov = rowwise_iou(gt.person_boxes[pair_person], person_box[pair_det], "voc")
    jmax = first_best(pair_det, pair_person, ov, np.ones(len(ov), bool), len(det_img))
    ovmax = np.full(len(det_img), -np.inf, np.float32)
    np.maximum.at(ovmax, pair_det, ov)
    # detections in images without GT persons: FP (the reference crashes there)
    ignored = np.where(jmax >= 0, np.any(gt.actions[jmax] == -1, axis=1), False)
    hit = (jmax >= 0) & (ovmax >= IOU_THRESHOLD)
    return _PersonAssignment(np.maximum(jmax, 0), jmax, hit, ignored)


def _column_ap(gt: VcocoOfficialGT, match: _PersonAssignment, score: np.ndarray, action: int,
               role_ok: np.ndarray | None) -> float:
    """AP of one agent / role column (score [D], NaN = no detection). Detections sharing a best
    person share an image, so the first OK one per person in the global stable descending order is
    the first in its image's order (the reference's per-image loop): one sort gives both the TPs
    and the AP ranking."""
    idx = np.flatnonzero(~np.isnan(score) & ~match.ignored)  # recorded detections
    idx = idx[descending_order(score[idx])]
    ok = match.hit[idx] & (gt.actions[match.person[idx], action] == 1)
    if role_ok is not None:
        ok &= role_ok[idx]
    tp = ok & first_occurrence(np.where(ok, match.jmax[idx], -1))
    return _official_ap(tp, int((gt.actions[:, action] == 1).sum()))


def _role_aps(gt: VcocoOfficialGT, dets: VcocoDetections, keep: np.ndarray, match: _PersonAssignment) -> dict:
    """Role AP per pair in Scenario 1 and 2: {1: [25 floats], 2: [25 floats]}."""
    role_score = dets.role_score[keep]
    aps: dict[int, list[float]] = {1: [], 2: []}
    for p in range(len(VCOCO_ROLE_PAIRS)):
        a, slot = int(_PAIR_ACTION[p]), int(_PAIR_ROLE_SLOT[p])
        gt_role = gt.role_boxes[match.person, a, slot]  # [D, 4]; -1 = role not annotated
        pred_role = dets.role_box[:, p][keep]  # per pair: never materialise the broadcast [D, 25, 4]
        no_gt_role = np.all(gt_role == -1, axis=1)
        role_hit = rowwise_iou(gt_role, pred_role, "voc") >= IOU_THRESHOLD  # NaN box -> False
        # Scenario 1: an unannotated role needs a "no object" box (all 0 or all NaN); Scenario 2: any
        empty = np.all(pred_role == 0, axis=1) | np.all(np.isnan(pred_role), axis=1)
        aps[1].append(_column_ap(gt, match, role_score[:, p], a, np.where(no_gt_role, empty, role_hit)))
        aps[2].append(_column_ap(gt, match, role_score[:, p], a, no_gt_role | role_hit))
    return aps


def evaluate_vcoco_detections(gt: VcocoOfficialGT, dets: VcocoDetections) -> dict:
    """Official agent AP (26 actions) and role AP (25 pairs, Scenario 1 and 2).

    Where vsrl_eval gives NaN (no positive person) the AP is None; where it would crash we choose:
    a column without detections has AP 0, a detection in an image without GT persons is an FP.
    """
    by_id = np.argsort(gt.image_ids, kind="stable")
    pos = np.minimum(np.searchsorted(gt.image_ids[by_id], dets.image_id), max(len(by_id) - 1, 0))
    keep = (gt.image_ids[by_id][pos] == dets.image_id) if len(by_id) else np.zeros(len(dets.image_id), bool)
    det_img = by_id[pos][keep]  # detections of other images are never collected by vsrl_eval
    match = _assign_persons(gt, det_img, dets.person_box[keep])
    agent_score = dets.agent_score[keep]
    agent = np.array([_column_ap(gt, match, agent_score[:, a], a, None) for a in range(NUM_ACTIONS)], np.float32)
    result = {"agent_ap": _number(np.nansum(agent) / np.float32(NUM_ACTIONS) * np.float32(100))}
    aps = _role_aps(gt, dets, keep, match)
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
                            correct_mat: np.ndarray, source: str = "predictions") -> dict:
    """Official V-COCO metrics of QPIC-layout predictions (§2.4 export + §2.5 evaluation).

    Keys: ``role_ap_s1_24``, ``role_ap_s2_24`` (reported), ``role_ap_s1_25``, ``role_ap_s2_25``,
    ``agent_ap`` (percent), ``agent_ap_per_action`` and ``role_ap_per_pair_s1/s2`` (fractions),
    ``num_detections``. ``source`` names the predictions (a file) in error messages.
    """
    gt = load_vcoco_official(official_root)
    known = set(gt.image_ids.tolist())
    for pred in predictions:
        if image_id_of(pred.file_name, source) not in known:
            raise HqmError(f"{source}: image {pred.file_name!r}: not an image of the V-COCO test split")
    return evaluate_vcoco_detections(gt, detections_from_predictions(predictions, correct_mat, source))
