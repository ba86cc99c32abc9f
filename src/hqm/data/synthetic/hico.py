"""Synthetic scenes -> the HICO-DET (PPDM) layout of docs/architecture.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hqm.config import SyntheticConfig
from hqm.data import classes
from hqm.data.layout import dataset_layout
from hqm.data.synthetic.catalogue import hico_correct_mat, hico_verbs_for
from hqm.data.synthetic.scenes import generate_scenes, summary
from hqm.io import atomic_write, write_json


def _hico_box(box, one_based: bool) -> list[int]:
    x1, y1, x2, y2 = box
    # continuous [x1, x2) -> inclusive pixel indices; the test file keeps 1-based MAT coordinates
    return [x1 + 1, y1 + 1, x2, y2] if one_based else [x1, y1, x2 - 1, y2 - 1]


def _hico_entries(scenes, split: str) -> list[dict]:
    names = classes.coco_object_names()
    lookup = classes.hico_hoi_id_lookup()
    entries = []
    for scene, _ in scenes:
        if split == "train":
            # one box per person / object, shared by the HOIs of the image (0-based)
            annotations = [
                {"bbox": _hico_box(e.box, False), "category_id": classes.VALID_COCO_IDS[names.index(e.name)]}
                for e in scene.entities
            ]
            hois = []
            for it in scene.interactions:
                obj_index = names.index(scene.entities[it.obj].name)
                for v in hico_verbs_for(it.pose, scene.entities[it.obj].name):
                    hois.append({"subject_id": it.person, "object_id": it.obj, "category_id": v + 1,
                                 "hoi_category_id": lookup[(obj_index, v)]})  # fmt: skip
            entries.append({"file_name": scene.file_name, "img_id": scene.image_id,
                            "annotations": annotations, "hoi_annotation": hois})  # fmt: skip
            continue
        # test: the MAT layout, boxes repeated for every HOI category of the image (1-based)
        by_category: dict[int, list] = {}
        for it in scene.interactions:
            obj_index = names.index(scene.entities[it.obj].name)
            for v in hico_verbs_for(it.pose, scene.entities[it.obj].name):
                by_category.setdefault(lookup[(obj_index, v)], []).append(it)
        annotations, hois = [], []
        for hoi_id in sorted(by_category):
            cat = classes.hico_hoi_categories()[hoi_id - 1]
            h0 = len(annotations)
            for it in by_category[hoi_id]:
                annotations.append({"bbox": _hico_box(scene.entities[it.person].box, True), "category_id": 1})
            o0 = len(annotations)
            for it in by_category[hoi_id]:
                annotations.append({"bbox": _hico_box(scene.entities[it.obj].box, True),
                                    "category_id": cat.object_coco_id})  # fmt: skip
            for k in range(len(by_category[hoi_id])):
                hois.append({"subject_id": h0 + k, "object_id": o0 + k, "category_id": cat.verb_id})
        entries.append({"file_name": scene.file_name, "annotations": annotations, "hoi_annotation": hois})
    return entries


def write_images(target: Path, scenes) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for scene, data in scenes:
        (target / scene.file_name).write_bytes(data)


def write_hico(root: Path, cfg: SyntheticConfig, hard_test: bool = False) -> dict:
    """Images and PPDM annotation files under ``root``; ``hard_test``: the all-hard test split."""
    layout = dataset_layout("hico", root)
    splits = {"train": generate_scenes(cfg, "train"), "test": generate_scenes(cfg, "test", hard_test)}
    for split, scenes in splits.items():
        stem = layout.images(split).name  # train2015 / test2015, as in the real file names
        for i, (scene, _) in enumerate(scenes):
            scene.image_id = i + 1
            scene.file_name = f"HICO_{stem}_{i + 1:08d}.jpg"
        write_images(layout.images(split), scenes)
    write_json(layout.annotations("train"), _hico_entries(splits["train"], "train"), indent=None)
    test_entries = _hico_entries(splits["test"], "test")
    write_json(layout.annotations("test"), test_entries, indent=None)
    with atomic_write(layout.correct_mat, "wb") as handle:
        np.save(handle, hico_correct_mat())
    known = {}
    for entry in test_entries:
        present = sorted({classes.coco_id_to_index(a["category_id"]) for a in entry["annotations"]} - {0})
        known[entry["file_name"]] = present
    write_json(layout.known_objects, {"format": "hico_known_objects", "images": known}, indent=None)
    return summary(splits)
