"""The one description of each dataset format's folder layout and label conventions (torch-free).

A dataset root holds ``annotations/``, ``images/<split folder>/`` and, for V-COCO, ``official/``
(docs/architecture.md). Everything that depends on the format -- file names, class counts, whether
verb ids are 1-based, whether a HOI may lack its object -- is read from :data:`FORMATS` by the
datasets, the evaluators, the converters and the synthetic generator alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hqm.data import classes
from hqm.errors import HqmError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class FormatSpec:
    """Conventions of one annotation format; paths are relative to the dataset root."""

    name: str
    num_obj_classes: int  # classifier classes: 80 (HICO-DET) / 81 (V-COCO: 80 = missing object)
    num_verb_classes: int  # 117 / 29
    verb_offset: int  # category_id of verb index 0 in the files: 1 (HICO-DET) / 0 (V-COCO)
    allow_missing_object: bool  # object_id -1 = the role has no object (V-COCO only)
    annotations: dict[str, str]  # split -> annotation file
    images: dict[str, str]  # split -> image folder
    correct_mat: str  # verb x object validity matrix [num_verb_classes, 80]
    known_objects: str | None  # Known-Object labels of the test images (HICO-DET only)
    official: str | None  # official evaluation files (V-COCO only)


FORMATS: dict[str, FormatSpec] = {
    "hico": FormatSpec(
        "hico", classes.NUM_OBJECT_CLASSES, classes.NUM_HICO_VERBS, 1, False,
        {"train": "annotations/trainval_hico.json", "test": "annotations/test_hico.json"},
        {"train": "images/train2015", "test": "images/test2015"},
        "annotations/corre_hico.npy", "annotations/known_objects_test.json", None,
    ),
    "vcoco": FormatSpec(
        "vcoco", classes.NUM_VCOCO_OBJECT_CLASSES, classes.NUM_VCOCO_VERBS, 0, True,
        {"train": "annotations/trainval_vcoco.json", "test": "annotations/test_vcoco.json"},
        {"train": "images/train2014", "test": "images/val2014"},
        "annotations/corre_vcoco.npy", None, "official",
    ),
}  # fmt: skip


def format_spec(fmt: str) -> FormatSpec:
    """The conventions of ``fmt`` ('hico' or 'vcoco'); a one-line HqmError otherwise."""
    try:
        return FORMATS[fmt]
    except KeyError:
        raise HqmError(f"unknown dataset format '{fmt}' (expected one of {', '.join(FORMATS)})") from None


@dataclass(frozen=True)
class DatasetLayout:
    """Absolute paths of one dataset root."""

    spec: FormatSpec
    root: Path

    @property
    def format(self) -> str:
        return self.spec.name

    def annotations(self, split: str) -> Path:
        return self.root / self.spec.annotations[_split(split)]

    def images(self, split: str) -> Path:
        return self.root / self.spec.images[_split(split)]

    @property
    def correct_mat(self) -> Path:
        return self.root / self.spec.correct_mat

    @property
    def known_objects(self) -> Path | None:
        return self.root / self.spec.known_objects if self.spec.known_objects else None

    @property
    def official(self) -> Path | None:
        return self.root / self.spec.official if self.spec.official else None


def _split(split: str) -> str:
    if split not in SPLITS:
        raise HqmError(f"dataset split must be 'train' or 'test', got '{split}'")
    return split


def dataset_layout(fmt: str, root: str | Path) -> DatasetLayout:
    """The layout of the ``fmt`` dataset rooted at ``root`` (nothing is read)."""
    return DatasetLayout(format_spec(fmt), Path(root))
