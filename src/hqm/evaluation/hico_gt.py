"""HICO-DET ground truth for the evaluator: loading, flat GT tables, categories, Known-Object mask.

Everything here is built once per evaluation call and is independent of the predictions
(evaluation.md §1.7-1.9 for the rules the tables serve).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

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


def with_unlisted_images(gt: HicoGroundTruth, file_names: list[str]) -> HicoGroundTruth:
    """``gt`` plus an image without any GT for every name of ``file_names`` it does not list."""
    listed = {img.file_name for img in gt.test}
    extra = [HoiImageAnnotation(name, np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros((0, 3), np.int64))
             for name in file_names if name not in listed]
    return replace(gt, test=gt.test + extra)


@dataclass
class GtTables:
    """All test GT of one evaluation as flat arrays (images concatenated in ``gt.test`` order).

    boxes [B, 4] (IoU dtype), labels int64 [B]; per GT HOI: image int64 [H], subject / object
    box index into ``boxes`` int64 [H], triplet (subject label, object label, verb) int64 [H, 3].
    """

    boxes: np.ndarray
    labels: np.ndarray
    hoi_image: np.ndarray
    hoi_sub: np.ndarray
    hoi_obj: np.ndarray
    triplets: np.ndarray


def gt_tables(test: list[HoiImageAnnotation], iou_dtype: str) -> GtTables:
    """Concatenate the per-image GT (boxes cast to ``iou_dtype``) into :class:`GtTables`."""
    box_offsets = np.cumsum([0] + [len(img.boxes) for img in test])
    boxes = np.concatenate([img.boxes for img in test] + [np.zeros((0, 4))]).astype(iou_dtype)
    labels = np.concatenate([img.labels for img in test] + [np.zeros(0, np.int64)])
    hoi_image = np.concatenate([np.full(len(img.hois), i, np.int64) for i, img in enumerate(test)]
                               + [np.zeros(0, np.int64)])
    hois = np.concatenate([img.hois for img in test] + [np.zeros((0, 3), np.int64)])
    hoi_sub = hois[:, 0] + box_offsets[hoi_image]
    hoi_obj = hois[:, 1] + box_offsets[hoi_image]
    triplets = np.stack([labels[hoi_sub], labels[hoi_obj], hois[:, 2]], 1)
    return GtTables(boxes, labels, hoi_image, hoi_sub, hoi_obj, triplets)


@dataclass
class Categories:
    """The evaluated HOI categories, in report order.

    keys: (subject label, object index, verb index) per category; lookup int64 [80, 117]:
    (object, verb) -> category of a person subject, -1 = not evaluated; hoi_ids: 1-based HICO id
    (None for a non-person subject).
    """

    keys: list[tuple[int, int, int]]
    lookup: np.ndarray
    hoi_ids: list[int | None] = field(default_factory=list)

    def index_of(self, triplets: np.ndarray) -> np.ndarray:
        """Category of each triplet row of ``triplets`` [H, 3], -1 if not evaluated -> int64 [H]."""
        key_index = {k: c for c, k in enumerate(self.keys)}
        return np.array([key_index.get(k, -1) for k in map(tuple, triplets.tolist())], dtype=np.int64)


def build_categories(gt_triplets: np.ndarray, all_600: bool, correct_mat: np.ndarray | None = None) -> Categories:
    """``all_600``: the 600 HICO-DET categories in HOI-id order; else the distinct test triplets in
    order of first appearance (QPIC). With ``correct_mat`` (category scope ``dataset``), only the
    person-subject categories it allows (``correct_mat[verb, object] > 0``) are kept."""
    hoi_of = {(c.object_index, c.verb_index): c.hoi_id for c in hico_hoi_categories()}
    if all_600:
        keys = [(0, c.object_index, c.verb_index) for c in hico_hoi_categories()]
    else:
        _, first = np.unique(gt_triplets, axis=0, return_index=True)
        keys = [tuple(row) for row in gt_triplets[np.sort(first)].tolist()]
    if correct_mat is not None:
        keys = [(s, o, v) for s, o, v in keys if s == 0 and correct_mat[v, o] > 0]
    lookup = np.full((NUM_OBJECT_CLASSES, NUM_HICO_VERBS), -1, dtype=np.int64)
    for k, (s, o, v) in enumerate(keys):
        if s == 0:
            lookup[o, v] = k
    return Categories(keys, lookup, [hoi_of.get((o, v)) if s == 0 else None for s, o, v in keys])


def known_object_mask(gt: HicoGroundTruth) -> np.ndarray:
    """bool [I, 80]: object classes known to be present in each test image (Known-Object setting)."""
    if gt.known_objects is None:
        raise HqmError(f"{gt.source}: the Known-Object setting needs known-object labels")
    known = np.zeros((len(gt.test), NUM_OBJECT_CLASSES), dtype=bool)
    for i, img in enumerate(gt.test):
        objs = gt.known_objects.get(img.file_name)
        if objs is not None:
            known[i, objs] = True
    return known
