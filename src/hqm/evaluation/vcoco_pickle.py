"""V-COCO detections in the official layout: arrays, the pickle's dicts, and QPIC's export (evaluation.md §2.4).

:class:`VcocoDetections` holds one row per detection (a QPIC query); :func:`write_official_pickle`
writes the list of dicts that v-coco's ``vsrl_eval.py`` reads, in QPIC's key order.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.data.classes import (
    NUM_VCOCO_OBJECT_CLASSES,
    NUM_VCOCO_VERBS,
    VCOCO_ACTION_ROLES,
    VCOCO_ACTIONS,
    VCOCO_MISSING_OBJECT,
    VCOCO_ROLE_PAIRS,
    VCOCO_VERB_CLASSES,
)
from hqm.errors import HqmError
from hqm.evaluation.predictions import ImagePrediction, validate_predictions
from hqm.io import atomic_write

NUM_ACTIONS = len(VCOCO_ACTIONS)
_PAIR_CLASS = np.array([VCOCO_VERB_CLASSES.index(f"{a}_{r}") for a, r in VCOCO_ROLE_PAIRS])
_CLASS_ACTION = [VCOCO_ACTIONS.index(n if n in VCOCO_ACTIONS else n.rsplit("_", 1)[0]) for n in VCOCO_VERB_CLASSES]
_TWO_ROLE_ACTIONS = {VCOCO_ACTIONS.index(a) for a, roles in VCOCO_ACTION_ROLES if len(roles) > 2}
_EXPORT_LAST_AGENTS = ("cut", "hit", "eat")  # QPIC writes these agent keys last, in this order


def image_id_of(file_name: str, source: str = "predictions") -> int:
    """COCO image id of a V-COCO file name (the integer after the last ``_``)."""
    try:
        return int(Path(file_name).stem.split("_")[-1])
    except ValueError:
        raise HqmError(f"{source}: image {file_name!r}: no COCO image id at the end of the file name") from None


def extended_correct_mat(correct_mat: np.ndarray) -> np.ndarray:
    """``[29, 80]`` validity matrix plus a column of ones for the missing object -> ``[29, 81]``."""
    return np.concatenate([correct_mat, np.ones((correct_mat.shape[0], 1))], axis=1)


@dataclass
class VcocoDetections:
    """image_id int64 [D], person_box float32 [D, 4], agent_score float32 [D, 26],
    role_box float32 [D, 25, 4] (NaN = no object), role_score float32 [D, 25] (pair order)."""

    image_id: np.ndarray
    person_box: np.ndarray
    agent_score: np.ndarray
    role_box: np.ndarray
    role_score: np.ndarray


def detections_from_predictions(predictions: list[ImagePrediction], correct_mat: np.ndarray,
                                source: str = "predictions") -> VcocoDetections:
    """QPIC outputs -> official detections (§2.4): all queries, scores x extended validity matrix.
    ``source`` names the predictions (a file) in error messages."""
    validate_predictions(predictions, source, None, NUM_VCOCO_OBJECT_CLASSES, NUM_VCOCO_VERBS)
    corre = extended_correct_mat(correct_mat)
    parts = []
    for pred in predictions:
        if pred.verbs is not None:
            raise HqmError(f"{source}: image {pred.file_name!r}: V-COCO needs the qpic_postprocess layout, "
                           "not triplets")
        s = (pred.verb_scores * corre[:, pred.obj_labels].T).astype(np.float32)  # [Q, 29]
        agent = np.zeros((len(pred), NUM_ACTIONS), np.float32)
        for c, a in enumerate(_CLASS_ACTION):  # two-role actions: running max from 0 (QPIC export)
            agent[:, a] = np.maximum(agent[:, a], s[:, c]) if a in _TWO_ROLE_ACTIONS else s[:, c]
        obj = np.where((pred.obj_labels == VCOCO_MISSING_OBJECT)[:, None], np.float32(np.nan), pred.obj_boxes)
        parts.append((np.full(len(pred), image_id_of(pred.file_name, source), np.int64), pred.sub_boxes, agent,
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
