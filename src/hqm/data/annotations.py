"""Readers and validators of the annotation files (evaluation.md §1.3, §2.2-2.3).

Shared by the datasets (training), the converters and the evaluators: one parser,
:func:`read_annotations`, applies the same rules everywhere. Everything here is numpy only. A bad
file raises :class:`~hqm.errors.HqmError` with one line naming the file and the entry at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.data.classes import NUM_OBJECT_CLASSES, VALID_COCO_IDS, coco_id_to_index
from hqm.data.layout import DatasetLayout, FormatSpec, format_spec
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


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_boxes(path: Path, where: str, anns: list) -> tuple[np.ndarray, np.ndarray]:
    """``annotations`` -> boxes float64 [B, 4] xyxy and labels int64 [B] (object index 0..79)."""
    boxes = np.zeros((len(anns), 4), dtype=np.float64)
    labels = np.zeros(len(anns), dtype=np.int64)
    for j, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise _fail(path, f"{where} annotations[{j}]", "expected an object with 'bbox' and 'category_id'")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise _fail(path, f"{where} annotations[{j}].bbox", f"expected 4 numbers, got {bbox!r}")
        if not np.all(np.isfinite(bbox)) or bbox[2] < bbox[0] or bbox[3] < bbox[1]:
            raise _fail(path, f"{where} annotations[{j}].bbox", f"invalid box {bbox} (x2<x1, y2<y1 or not finite)")
        try:
            labels[j] = coco_id_to_index(ann.get("category_id"))
        except (ValueError, TypeError):
            raise _fail(path, f"{where} annotations[{j}].category_id",
                        f"{ann.get('category_id')!r} is not a valid COCO category id") from None
        boxes[j] = bbox
    return boxes, labels


def _parse_image(path: Path, i: int, entry: object, spec: FormatSpec, correct_mat: np.ndarray | None,
                 drop_bad_box_index: bool) -> HoiImageAnnotation | None:
    """One image entry; ``None`` when ``drop_bad_box_index`` drops it (QPIC's training rule)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise _fail(path, f"entry {i}", "expected an object with a string 'file_name'")
    where = f"image {entry['file_name']!r}"
    anns, hois = entry.get("annotations"), entry.get("hoi_annotation")
    if not isinstance(anns, list) or not isinstance(hois, list):
        raise _fail(path, where, "'annotations' and 'hoi_annotation' must be lists")
    boxes, labels = _parse_boxes(path, where, anns)
    rows = np.zeros((len(hois), 3), dtype=np.int64)
    low_obj = -1 if spec.allow_missing_object else 0
    verb_low, verb_high = spec.verb_offset, spec.num_verb_classes + spec.verb_offset
    for j, hoi in enumerate(hois):
        if not isinstance(hoi, dict):
            raise _fail(path, f"{where} hoi_annotation[{j}]", "expected an object")
        sub, obj, verb = hoi.get("subject_id"), hoi.get("object_id"), hoi.get("category_id")
        for name, value in (("subject_id", sub), ("object_id", obj), ("category_id", verb)):
            if not _is_index(value):
                raise _fail(path, f"{where} hoi_annotation[{j}].{name}", f"expected an integer, got {value!r}")
        if not verb_low <= verb < verb_high:
            raise _fail(path, f"{where} hoi_annotation[{j}].category_id", f"{verb!r} is outside [{verb_low}, {verb_high - 1}]")
        for name, value, low in (("subject_id", sub, 0), ("object_id", obj, low_obj)):
            if not low <= value < len(anns):
                if drop_bad_box_index:
                    return None
                raise _fail(path, f"{where} hoi_annotation[{j}].{name}",
                            f"{value!r} is outside [{low}, {len(anns) - 1}] (a box index outside 'annotations')")
        if correct_mat is not None and obj >= 0 and correct_mat[verb - verb_low, labels[obj]] == 0:
            raise _fail(path, f"{where} hoi_annotation[{j}]",
                        f"pairs verb {verb} with object {labels[obj]}, which is not in the verb-object table")
        rows[j] = (sub, obj, verb - verb_low)
    return HoiImageAnnotation(entry["file_name"], boxes, labels, rows)


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


def read_annotations(path: str | Path, fmt: str, *, correct_mat: np.ndarray | None = None,
                     drop_bad_box_index: bool = False, unique: bool = True) -> list[HoiImageAnnotation]:
    """The one parser of HOI annotation files, for training, evaluation and conversion alike.

    ``fmt`` selects the conventions of :data:`hqm.data.layout.FORMATS` (verb id offset, missing
    objects). Every box must be 4 finite numbers with x1 <= x2 and y1 <= y2, every id an integer in
    range; a bad entry raises a one-line HqmError naming the file, the image and the index.
    ``correct_mat`` [C_verb, 80] also rejects (verb, object) pairs outside the verb-object table.
    ``drop_bad_box_index`` drops an image whose HOI points outside its ``annotations`` (what QPIC
    does with the training files) instead of failing. ``unique`` rejects a file name listed twice.
    """
    spec = format_spec(fmt)
    path, data = _read_list(path)
    parsed = (_parse_image(path, i, e, spec, correct_mat, drop_bad_box_index) for i, e in enumerate(data))
    images = [img for img in parsed if img is not None]
    if unique:
        _check_unique(path, images)
    return images


def read_hico_annotations(path: str | Path) -> list[HoiImageAnnotation]:
    """PPDM HICO-DET train or test file -> images (verb ids 1..117 become indices 0..116)."""
    return read_annotations(path, "hico")


def read_vcoco_annotations(path: str | Path) -> list[HoiImageAnnotation]:
    """QPIC V-COCO file -> images (verb classes 0..28 already 0-based; object_id -1 = missing)."""
    return read_annotations(path, "vcoco")


def read_split(layout: DatasetLayout, split: str, correct_mat: np.ndarray | None) -> list[HoiImageAnnotation]:
    """One split of a dataset root with the rules of training (and of ``hqm check-dataset``).

    HICO-DET HOIs must be in the verb-object table ``correct_mat``. Training images whose HOIs
    point outside their boxes are dropped, as QPIC does with the released training files; anywhere
    else that, like every other bad entry, is a one-line error at load time.
    """
    return read_annotations(
        layout.annotations(split), layout.format,
        correct_mat=correct_mat if layout.format == "hico" else None,
        drop_bad_box_index=split == "train", unique=split == "test",
    )  # fmt: skip


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
    "read_annotations",
    "read_hico_annotations",
    "read_known_objects",
    "read_split",
    "read_vcoco_annotations",
]
