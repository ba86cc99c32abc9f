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
from PIL import Image
from torch.utils.data import Dataset

from hqm.config import AugmentConfig, DatasetConfig
from hqm.data import classes
from hqm.data.annotations import HoiImageAnnotation, read_correct_mat, read_split
from hqm.data.images import check_listed_images_exist, load_rgb
from hqm.data.layout import SPLITS, dataset_layout
from hqm.data.transforms import build_test_transform, build_train_transform, to_normalized_tensor
from hqm.errors import HqmError


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
    """Paths and class counts of a dataset root (:mod:`hqm.data.layout`) and its validity matrix."""
    layout = dataset_layout(ds.format, ds.root)
    spec = layout.spec
    corre_path = layout.correct_mat
    if not corre_path.is_file():
        raise HqmError(f"{corre_path}: file not found (convert or generate the dataset first)")
    corre = read_correct_mat(corre_path, spec.num_verb_classes)
    return DatasetMeta(spec.name, layout.root, spec.num_obj_classes, spec.num_verb_classes,
                       layout.annotations("train"), layout.annotations("test"), corre_path, corre,
                       layout.images("train"), layout.images("test"), layout.known_objects, layout.official)  # fmt: skip


def read_records(meta: DatasetMeta, split: str) -> list[HoiImageAnnotation]:
    """The split's images, parsed and checked at load time by the shared parser (:func:`read_split`)."""
    return read_split(dataset_layout(meta.format, meta.root), split, meta.correct_mat)


class HOIDataset(Dataset):
    """QPIC-style HOI dataset over one split of a HICO-DET or V-COCO root.

    ``cache``: keep every item in memory once built. Only for a deterministic ``transform``: a
    cached item is returned again whatever the random state.
    """

    def __init__(self, meta: DatasetMeta, split: str, transform, max_boxes: int = 100, cache: bool = False):
        if split not in SPLITS:
            raise HqmError(f"dataset split must be 'train' or 'test', got '{split}'")
        self.meta, self.split, self.transform, self.max_boxes = meta, split, transform, max_boxes
        self.cache: dict[int, tuple[torch.Tensor, dict[str, Any]]] | None = {} if cache else None
        self.records = read_records(meta, split)
        self.image_dir = meta.images(split)
        check_listed_images_exist(self.image_dir, [r.file_name for r in self.records], meta.annotations(split))

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, index: int) -> Image.Image:
        return load_rgb(self.image_dir / self.records[index].file_name, self.meta.annotations(self.split))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.cache is None:
            return self._build_item(index)
        if index not in self.cache:
            self.cache[index] = self._build_item(index)
        image, target = self.cache[index]
        return image, dict(target)  # a fresh dict: a caller adding keys must not change the cache

    def make_target(self, rec: HoiImageAnnotation, boxes: torch.Tensor, box_ids: torch.Tensor, width: int,
                    height: int) -> dict[str, torch.Tensor]:
        return build_targets(rec, boxes, box_ids, width, height, self.meta)

    def _build_item(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        rec = self.records[index]
        image = self.load_image(index)
        w, h = image.size
        n = min(len(rec.boxes), self.max_boxes) if self.split == "train" else len(rec.boxes)
        boxes = torch.from_numpy(rec.boxes[:n].astype(np.float32))
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        box_ids = torch.arange(n)[keep]
        image, boxes, box_ids = self.transform(image, boxes[keep], box_ids)
        target = self.make_target(rec, boxes, box_ids, image.width, image.height)
        target.update(
            orig_size=torch.tensor([h, w], dtype=torch.long),
            aug_size=torch.tensor([image.height, image.width], dtype=torch.long),
            image_index=index,
            file_name=rec.file_name,
        )
        return to_normalized_tensor(image), target


def normalized_cxcywh(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """xyxy pixel boxes [K, 4] of a ``width`` x ``height`` image -> cxcywh in [0, 1] ([0, 4] if K = 0)."""
    boxes = boxes.reshape(-1, 4).float()
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    return torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2,
                        boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=-1) / scale


class DetectionDataset(HOIDataset):
    """The same images and transforms with DETR's targets: every annotated box (people and objects,
    in or out of an interaction), ``labels`` Long[k] COCO category ids, ``boxes`` [k, 4] normalised
    cxcywh (``hqm pretrain-detr``)."""

    def make_target(self, rec: HoiImageAnnotation, boxes: torch.Tensor, box_ids: torch.Tensor, width: int,
                    height: int) -> dict[str, torch.Tensor]:
        cxcywh = normalized_cxcywh(boxes, width, height)
        coco_ids = torch.tensor(classes.VALID_COCO_IDS, dtype=torch.long)
        labels = coco_ids[torch.as_tensor(rec.labels, dtype=torch.long)[box_ids]]
        return {"labels": labels, "boxes": cxcywh}


def build_targets(rec: HoiImageAnnotation, boxes: torch.Tensor, box_ids: torch.Tensor, width: int, height: int,
                  meta: DatasetMeta) -> dict[str, torch.Tensor]:  # fmt: skip
    """Group the surviving HOIs by (subject, object) pair (first appearance order).

    boxes: FloatTensor[K, 4] xyxy of the transformed image for the annotation boxes ``box_ids`` [K].
    Returns obj_labels Long[n], verb_labels Float[n, C_verb], sub_boxes / obj_boxes Float[n, 4]
    normalised cxcywh (all-zero object box and label 80 for a missing V-COCO object).
    """
    where = {int(b): k for k, b in enumerate(box_ids.tolist())}
    cxcywh = normalized_cxcywh(boxes, width, height)
    pair_index: dict[tuple[int, int], int] = {}
    obj_labels, verb_rows, subs, objs = [], [], [], []
    for s, o, v in rec.hois.tolist():
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


def build_dataset(ds: DatasetConfig, split: str, augment: AugmentConfig, cache: bool = False) -> HOIDataset:
    """The train split with the training augmentation (``augment.policy``), the test split with the
    test transform; ``cache`` holds the items in memory where the transform is deterministic."""
    meta = dataset_meta(ds)
    transform = build_train_transform(augment) if split == "train" else build_test_transform(augment)
    deterministic = split == "test" or augment.policy == "none"
    return HOIDataset(meta, split, transform, max_boxes=augment.max_boxes, cache=cache and deterministic)


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
