"""Readers and validators of the annotation files (evaluation.md §1.3, §2.2-2.3).

Shared by the datasets, the converters and the evaluators. Everything here is numpy only. A bad
file raises :class:`~hqm.errors.HqmError` with one line naming the file and the entry at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.data.classes import (
    NUM_HICO_VERBS,
    NUM_OBJECT_CLASSES,
    NUM_VCOCO_VERBS,
    VALID_COCO_IDS,
    coco_id_to_index,
)
from hqm.errors import HqmError
from hqm.io import read_json


@dataclass
class HoiImageAnnotation:
    """Ground truth of one image, in model indices.

    boxes: float64 [B, 4] absolute xyxy as stored in the file; labels: int64 [B] object index 0..79;
    hois: int64 [H, 3] rows (subject box index, object box index or -1, verb index).
    """

    file_name: str
    boxes: np.ndarray
    labels: np.ndarray
    hois: np.ndarray


def _fail(path: Path, where: str, what: str) -> HqmError:
    return HqmError(f"{path}: {where}: {what}")


def _parse_image(path: Path, i: int, entry: object, verb_offset: int, num_verbs: int,
                 allow_missing_object: bool) -> HoiImageAnnotation:
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise _fail(path, f"entry {i}", "expected an object with a string 'file_name'")
    name = entry["file_name"]
    where = f"image {name!r}"
    anns = entry.get("annotations")
    hois = entry.get("hoi_annotation")
    if not isinstance(anns, list) or not isinstance(hois, list):
        raise _fail(path, where, "'annotations' and 'hoi_annotation' must be lists")
    boxes = np.zeros((len(anns), 4), dtype=np.float64)
    labels = np.zeros(len(anns), dtype=np.int64)
    for j, ann in enumerate(anns):
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in bbox
        ):
            raise _fail(path, f"{where} annotations[{j}].bbox", "expected 4 numbers")
        if not np.all(np.isfinite(bbox)) or bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            raise _fail(path, f"{where} annotations[{j}].bbox", f"invalid box {bbox} (x2<x1, y2<y1 or not finite)")
        try:
            labels[j] = coco_id_to_index(ann.get("category_id"))
        except (ValueError, TypeError):
            raise _fail(path, f"{where} annotations[{j}].category_id",
                        f"{ann.get('category_id')!r} is not a valid COCO category id") from None
        boxes[j] = bbox
    rows = np.zeros((len(hois), 3), dtype=np.int64)
    low_obj = -1 if allow_missing_object else 0
    for j, hoi in enumerate(hois):
        if not isinstance(hoi, dict):
            raise _fail(path, f"{where} hoi_annotation[{j}]", "expected an object")
        sub, obj, verb = hoi.get("subject_id"), hoi.get("object_id"), hoi.get("category_id")
        for field, value, low, high in (("subject_id", sub, 0, len(anns)), ("object_id", obj, low_obj, len(anns)),
                                        ("category_id", verb, verb_offset, num_verbs + verb_offset)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value < high:
                raise _fail(path, f"{where} hoi_annotation[{j}].{field}",
                            f"{value!r} is outside [{low}, {high - 1}]")
        rows[j] = (sub, obj, verb - verb_offset)
    return HoiImageAnnotation(name, boxes, labels, rows)


def _read_list(path: str | Path) -> tuple[Path, list]:
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise HqmError(f"{path}: expected a JSON list of images at the top level")
    return path, data


def _check_unique(path: Path, images: list[HoiImageAnnotation]) -> None:
    seen: set[str] = set()
    for img in images:
        if img.file_name in seen:
            raise HqmError(f"{path}: image {img.file_name!r}: listed twice")
        seen.add(img.file_name)


def read_hico_annotations(path: str | Path) -> list[HoiImageAnnotation]:
    """PPDM HICO-DET train or test file -> images (verb ids 1..117 become indices 0..116)."""
    path, data = _read_list(path)
    images = [_parse_image(path, i, e, 1, NUM_HICO_VERBS, False) for i, e in enumerate(data)]
    _check_unique(path, images)
    return images


def read_vcoco_annotations(path: str | Path) -> list[HoiImageAnnotation]:
    """QPIC V-COCO file -> images (verb classes 0..28 already 0-based; object_id -1 = missing)."""
    path, data = _read_list(path)
    images = [_parse_image(path, i, e, 0, NUM_VCOCO_VERBS, True) for i, e in enumerate(data)]
    _check_unique(path, images)
    return images


def read_correct_mat(path: str | Path, num_verbs: int, num_objects: int = NUM_OBJECT_CLASSES) -> np.ndarray:
    """Verb x object validity matrix (``corre_*.npy``) as float64 ``[num_verbs, num_objects]`` of 0/1."""
    path = Path(path)
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    try:
        mat = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise HqmError(f"{path}: not a numpy .npy array ({exc})") from None
    if mat.shape != (num_verbs, num_objects):
        raise HqmError(f"{path}: shape {mat.shape}, expected ({num_verbs}, {num_objects})")
    if not np.all((mat == 0) | (mat == 1)):
        raise HqmError(f"{path}: entries must be 0 or 1")
    return mat.astype(np.float64)


def read_known_objects(path: str | Path) -> dict[str, np.ndarray]:
    """Known-Object labels: file name -> sorted object indices present (``known_objects_test.json``)."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != "hico_known_objects" or not isinstance(
        data.get("images"), dict
    ):
        raise HqmError(f"{path}: expected {{'format': 'hico_known_objects', 'images': {{...}}}}")
    out = {}
    for name, objs in data["images"].items():
        if not isinstance(objs, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) and 0 <= o < NUM_OBJECT_CLASSES for o in objs
        ):
            raise HqmError(f"{path}: image {name!r}: expected a list of object indices 0..79")
        out[name] = np.unique(np.asarray(objs, dtype=np.int64))
    return out


def known_objects_from_gt(images: list[HoiImageAnnotation]) -> dict[str, np.ndarray]:
    """Known-Object labels derived from test GT: the objects of the image's annotated HOIs."""
    out = {}
    for img in images:
        objs = img.hois[:, 1]
        out[img.file_name] = np.unique(img.labels[objs[objs >= 0]])
    return out


def count_hico_train_triplets(images: list[HoiImageAnnotation]) -> dict[tuple[int, int, int], int]:
    """(subject label, object label, verb index) -> number of training HOI entries (rare split)."""
    counts: dict[tuple[int, int, int], int] = {}
    for img in images:
        if len(img.hois) == 0:
            continue
        keys = np.stack([img.labels[img.hois[:, 0]], img.labels[img.hois[:, 1]], img.hois[:, 2]], 1)
        for key in map(tuple, keys.tolist()):
            counts[key] = counts.get(key, 0) + 1
    return counts


__all__ = [
    "HoiImageAnnotation",
    "VALID_COCO_IDS",
    "count_hico_train_triplets",
    "known_objects_from_gt",
    "read_correct_mat",
    "read_hico_annotations",
    "read_known_objects",
    "read_vcoco_annotations",
]
