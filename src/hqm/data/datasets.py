"""HICO-DET (PPDM layout) and V-COCO (QPIC layout) datasets with QPIC-style targets (method.md §2).

One :class:`HOIDataset` serves both formats; the differences (0/1-based verb ids, the missing
V-COCO object) are resolved once when the annotations are read. An item is
``(image FloatTensor[3, H, W], target dict)`` as fixed in ``docs/architecture.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from hqm.config import AugmentConfig, DatasetConfig
from hqm.data import classes
from hqm.data.transforms import build_test_transform, build_train_transform, to_normalized_tensor
from hqm.errors import HqmError
from hqm.io import read_json


@dataclass(frozen=True)
class DatasetMeta:
    """Where a dataset lives and how big its heads are."""

    format: str  # "hico" | "vcoco"
    root: Path
    num_obj_classes: int  # 80 hico / 81 vcoco (80 = missing object)
    num_verb_classes: int  # 117 / 29
    train_annotations: Path
    test_annotations: Path
    correct_mat_path: Path
    correct_mat: np.ndarray  # [C_verb, 80], corre[verb, object]
    train_images: Path
    test_images: Path
    known_objects: Path | None  # hico only
    official_root: Path | None  # vcoco only: <root>/official (official evaluation files)

    def annotations(self, split: str) -> Path:
        return self.train_annotations if split == "train" else self.test_annotations

    def images(self, split: str) -> Path:
        return self.train_images if split == "train" else self.test_images


def dataset_meta(ds: DatasetConfig) -> DatasetMeta:
    """Paths and class counts of a dataset root (layouts in docs/architecture.md)."""
    root = Path(ds.root)
    ann = root / "annotations"
    if ds.format == "hico":
        corre_path, n_obj, n_verb = ann / "corre_hico.npy", classes.NUM_OBJECT_CLASSES, classes.NUM_HICO_VERBS
        train, test = ann / "trainval_hico.json", ann / "test_hico.json"
        train_img, test_img = root / "images" / "train2015", root / "images" / "test2015"
        known, official = ann / "known_objects_test.json", None
    elif ds.format == "vcoco":
        corre_path, n_obj, n_verb = ann / "corre_vcoco.npy", classes.NUM_VCOCO_OBJECT_CLASSES, classes.NUM_VCOCO_VERBS
        train, test = ann / "trainval_vcoco.json", ann / "test_vcoco.json"
        train_img, test_img = root / "images" / "train2014", root / "images" / "val2014"
        known, official = None, root / "official"
    else:
        raise HqmError(f"dataset {ds.root}: unknown format '{ds.format}'")
    if not corre_path.is_file():
        raise HqmError(f"{corre_path}: file not found (convert or generate the dataset first)")
    try:
        corre = np.load(corre_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise HqmError(f"{corre_path}: unreadable .npy ({exc})") from None
    if corre.shape != (n_verb, classes.NUM_OBJECT_CLASSES):
        raise HqmError(f"{corre_path}: shape {corre.shape}, expected ({n_verb}, {classes.NUM_OBJECT_CLASSES})")
    return DatasetMeta(ds.format, root, n_obj, n_verb, train, test, corre_path, corre, train_img, test_img, known, official)


@dataclass
class _Record:
    """One image: its boxes (xyxy), object labels and HOIs (subject, object | -1, verb index)."""

    file_name: str
    boxes: np.ndarray  # [N, 4] float32
    labels: np.ndarray  # [N] object index (person = 0)
    hois: list[tuple[int, int, int]]


def _read_records(meta: DatasetMeta, split: str) -> list[_Record]:
    """Parse and check one annotation file. Train images with out-of-range HOI box indices are
    dropped (QPIC's behaviour); anywhere else such an index is an error."""
    path = meta.annotations(split)
    data = read_json(path)
    if not isinstance(data, list):
        raise HqmError(f"{path}: expected a JSON list of images")
    hico = meta.format == "hico"
    records = []
    for i, entry in enumerate(data):
        where = f"{path}: image {i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise HqmError(f"{where}: needs a string 'file_name'")
        where = f"{path}: image {i} ({entry['file_name']})"
        anns, raw_hois = entry.get("annotations"), entry.get("hoi_annotation")
        if not isinstance(anns, list) or not isinstance(raw_hois, list):
            raise HqmError(f"{where}: needs 'annotations' and 'hoi_annotation' lists")
        boxes, labels = [], []
        for j, a in enumerate(anns):
            bbox = a.get("bbox") if isinstance(a, dict) else None
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
                raise HqmError(f"{where}: annotations[{j}].bbox must be 4 numbers")
            try:
                labels.append(classes.coco_id_to_index(a.get("category_id")))
            except ValueError:
                raise HqmError(f"{where}: annotations[{j}].category_id {a.get('category_id')!r} is not a valid COCO id") from None
            boxes.append(bbox)
        hois, out_of_range = [], False
        n_verbs = meta.num_verb_classes
        for j, h in enumerate(raw_hois):
            try:
                s, o, v = int(h["subject_id"]), int(h["object_id"]), int(h["category_id"])
            except (KeyError, TypeError, ValueError):
                raise HqmError(f"{where}: hoi_annotation[{j}] needs integer subject_id, object_id, category_id") from None
            v = v - 1 if hico else v
            if not 0 <= v < n_verbs:
                raise HqmError(f"{where}: hoi_annotation[{j}].category_id {h['category_id']} is out of range")
            if not 0 <= s < len(anns) or not (-1 if not hico else 0) <= o < len(anns):
                out_of_range = True
                if split == "train":
                    break
                raise HqmError(f"{where}: hoi_annotation[{j}] refers to a box index outside annotations")
            if hico and meta.correct_mat[v, labels[o]] == 0:
                raise HqmError(
                    f"{where}: hoi_annotation[{j}] pairs verb {v + 1} with object {labels[o]}, "
                    "which is not in the verb-object table"
                )
            hois.append((s, o, v))
        if out_of_range:
            continue  # QPIC drops the whole training image
        box_array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        records.append(_Record(entry["file_name"], box_array, np.asarray(labels, dtype=np.int64), hois))
    return records


class HOIDataset(Dataset):
    """QPIC-style HOI dataset over one split of a HICO-DET or V-COCO root."""

    def __init__(self, meta: DatasetMeta, split: str, transform, max_boxes: int = 100):
        if split not in ("train", "test"):
            raise HqmError(f"dataset split must be 'train' or 'test', got '{split}'")
        self.meta, self.split, self.transform, self.max_boxes = meta, split, transform, max_boxes
        self.records = _read_records(meta, split)
        self.image_dir = meta.images(split)

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, index: int) -> Image.Image:
        path = self.image_dir / self.records[index].file_name
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except FileNotFoundError:
            raise HqmError(f"{path}: image file not found ({self.meta.annotations(self.split).name} lists it)") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise HqmError(f"{path}: unreadable image ({exc})") from None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        rec = self.records[index]
        image = self.load_image(index)
        w, h = image.size
        n = min(len(rec.boxes), self.max_boxes) if self.split == "train" else len(rec.boxes)
        boxes = torch.from_numpy(rec.boxes[:n].copy())
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        box_ids = torch.arange(n)[keep]
        image, boxes, box_ids = self.transform(image, boxes[keep], box_ids)
        target = build_targets(rec, boxes, box_ids, image.width, image.height, self.meta)
        target.update(
            orig_size=torch.tensor([h, w], dtype=torch.long),
            aug_size=torch.tensor([image.height, image.width], dtype=torch.long),
            image_index=index,
            file_name=rec.file_name,
        )
        return to_normalized_tensor(image), target


def build_targets(rec: _Record, boxes: torch.Tensor, box_ids: torch.Tensor, width: int, height: int,
                  meta: DatasetMeta) -> dict[str, torch.Tensor]:  # fmt: skip
    """Group the surviving HOIs by (subject, object) pair (first appearance order).

    boxes: FloatTensor[K, 4] xyxy of the transformed image for the annotation boxes ``box_ids`` [K].
    Returns obj_labels Long[n], verb_labels Float[n, C_verb], sub_boxes / obj_boxes Float[n, 4]
    normalised cxcywh (all-zero object box and label 80 for a missing V-COCO object).
    """
    where = {int(b): k for k, b in enumerate(box_ids.tolist())}
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    cxcywh = torch.stack(
        [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]],
        dim=-1,
    ) / scale if len(boxes) else boxes.new_zeros((0, 4))  # fmt: skip
    pair_index: dict[tuple[int, int], int] = {}
    obj_labels, verb_rows, subs, objs = [], [], [], []
    for s, o, v in rec.hois:
        if s not in where or (o != -1 and o not in where):
            continue  # a crop removed the subject or the object
        key = (s, o)
        if key not in pair_index:
            pair_index[key] = len(obj_labels)
            if o == -1:
                obj_labels.append(classes.VCOCO_MISSING_OBJECT)
                objs.append(torch.zeros(4))
            else:
                obj_labels.append(int(rec.labels[o]))
                objs.append(cxcywh[where[o]])
            subs.append(cxcywh[where[s]])
            verb_rows.append(torch.zeros(meta.num_verb_classes))
        verb_rows[pair_index[key]][v] = 1.0
    n = len(obj_labels)
    return {
        "obj_labels": torch.tensor(obj_labels, dtype=torch.long),
        "verb_labels": torch.stack(verb_rows) if n else torch.zeros((0, meta.num_verb_classes)),
        "sub_boxes": torch.stack(subs) if n else torch.zeros((0, 4)),
        "obj_boxes": torch.stack(objs) if n else torch.zeros((0, 4)),
    }


def build_dataset(ds: DatasetConfig, split: str, augment: AugmentConfig) -> HOIDataset:
    """The train split with QPIC's training augmentation, the test split with the test transform."""
    meta = dataset_meta(ds)
    transform = build_train_transform(augment) if split == "train" else build_test_transform(augment)
    return HOIDataset(meta, split, transform, max_boxes=augment.max_boxes)


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Zero-pad images bottom/right to the largest size of the batch.

    Returns images FloatTensor[B, 3, Hmax, Wmax], mask BoolTensor[B, Hmax, Wmax] (True = padding),
    and the list of targets.
    """
    hmax = max(img.shape[1] for img, _ in batch)
    wmax = max(img.shape[2] for img, _ in batch)
    images = torch.zeros((len(batch), 3, hmax, wmax), dtype=batch[0][0].dtype)
    mask = torch.ones((len(batch), hmax, wmax), dtype=torch.bool)
    for i, (img, _) in enumerate(batch):
        images[i, :, : img.shape[1], : img.shape[2]] = img
        mask[i, : img.shape[1], : img.shape[2]] = False
    return images, mask, [t for _, t in batch]
