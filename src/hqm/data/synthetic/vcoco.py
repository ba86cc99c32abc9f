"""Synthetic scenes -> the official V-COCO layout (converted afterwards by hqm.data.vcoco_convert)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from hqm.config import SyntheticConfig
from hqm.data import classes
from hqm.data.layout import dataset_layout
from hqm.data.synthetic.catalogue import POSE_OBJECTS, POSE_VCOCO_ROLES
from hqm.data.synthetic.hico import write_images
from hqm.data.synthetic.scenes import generate_scenes, summary
from hqm.io import atomic_write, write_json


def write_vcoco_official(root: Path, cfg: SyntheticConfig, hard_test: bool = False) -> dict:
    """Write images and the official v-coco layout under ``root/official``."""
    layout = dataset_layout("vcoco", root)
    splits = {"trainval": generate_scenes(cfg, "train"), "test": generate_scenes(cfg, "test", hard_test)}
    names = classes.coco_object_names()
    images, annotations = [], []
    next_ann = 1
    per_split_persons: dict[str, list[tuple]] = {}
    for split, scenes in splits.items():
        target = layout.images("train" if split == "trainval" else "test")
        folder = target.name  # train2014 / val2014, as in the real COCO file names
        offset = 1 if split == "trainval" else 500_001
        persons = []
        for i, (scene, _) in enumerate(scenes):
            scene.image_id = offset + i
            scene.file_name = f"COCO_{folder}_{scene.image_id:012d}.jpg"
            images.append({"id": scene.image_id, "file_name": scene.file_name,
                           "width": scene.width, "height": scene.height})  # fmt: skip
            ann_ids = []
            for e in scene.entities:
                x1, y1, x2, y2 = e.box
                annotations.append({"id": next_ann, "image_id": scene.image_id,
                                    "category_id": classes.VALID_COCO_IDS[names.index(e.name)],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})  # fmt: skip
                ann_ids.append(next_ann)
                next_ann += 1
            for k, e in enumerate(scene.entities):
                if e.kind == "person":
                    persons.append((scene, k, ann_ids))
        per_split_persons[split] = persons
        write_images(target, scenes)
    categories = [{"id": cid, "name": names[i].replace("_", " "), "supercategory": "none"}
                  for i, cid in enumerate(classes.VALID_COCO_IDS)]  # fmt: skip
    data = layout.official / "data"
    write_json(data / "instances_vcoco_all_2014.json",
               {"info": {"description": "hqm synthetic"}, "licenses": [], "images": images,
                "annotations": annotations, "categories": categories}, indent=None)  # fmt: skip
    for split, persons in per_split_persons.items():
        write_json(data / "vcoco" / f"vcoco_{split}.json", _vcoco_actions(persons), indent=None)
        ids = sorted({scene.image_id for scene, _ in splits[split]})
        with atomic_write(data / "splits" / f"vcoco_{split}.ids", "w", encoding="utf-8") as handle:
            handle.write("".join(f"{i}\n" for i in ids))
    with atomic_write(layout.official / "prior.pickle", "wb") as handle:
        pickle.dump(_vcoco_prior(), handle, protocol=2)
    return summary({"train": splits["trainval"], "test": splits["test"]})


def _vcoco_actions(persons: list[tuple]) -> list[dict]:
    """The 26 official action objects for the given persons (scene, entity index, ann ids)."""
    out = []
    for action, roles in classes.VCOCO_ACTION_ROLES:
        labels, role_ids = [], [[] for _ in roles]
        for scene, k, ann_ids in persons:
            role_obj = [0] * len(roles)
            role_obj[0] = ann_ids[k]
            label = 0
            if scene.idle.get(k) == action:
                label = 1
            for it in scene.interactions:
                if it.person != k:
                    continue
                for act, role in POSE_VCOCO_ROLES[it.pose]:
                    if act == action and role in roles:
                        label = 1
                        role_obj[roles.index(role)] = ann_ids[it.obj]
            labels.append(label)
            for r in range(len(roles)):
                role_ids[r].append(role_obj[r])
        out.append({
            "action_name": action,
            "role_name": list(roles),
            "include": [[] for _ in roles],
            "image_id": [scene.image_id for scene, _, _ in persons],
            "ann_id": [ann_ids[k] for _, k, ann_ids in persons],
            "label": labels,
            "role_object_id": [x for ids in role_ids for x in ids],
        })
    return out


def _vcoco_prior() -> dict[int, np.ndarray]:
    """prior.pickle: {object index: (1, 29)} in VSGNet's alphabetical column order."""
    allowed = set()
    for pose, objs in POSE_OBJECTS.items():
        for obj in objs:
            for action, role in POSE_VCOCO_ROLES[pose]:
                allowed.add((f"{action}_{role}", classes.coco_object_names().index(obj)))
    prior = {}
    for o in range(classes.NUM_OBJECT_CLASSES):
        row = np.zeros((1, len(classes.VCOCO_PRIOR_COLUMN_ORDER)), dtype=np.float64)
        for j, name in enumerate(classes.VCOCO_PRIOR_COLUMN_ORDER):
            if "_" not in name or name in classes.VCOCO_AGENT_ONLY or (name, o) in allowed:
                row[0, j] = 1.0
        prior[o] = row
    return prior
