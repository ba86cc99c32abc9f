"""Official V-COCO files + COCO 2014 annotations + prior.pickle -> QPIC annotation files.

Pure Python 3 re-implementation of QPIC's ``convert_vcoco_annotations.py`` (evaluation.md §2.3):
``trainval_vcoco.json``, ``test_vcoco.json`` (JSON list of ``file_name`` / ``annotations`` /
``hoi_annotation``) and ``corre_vcoco.npy`` ``[29, 80]``. Every input is checked; an error names
the file and the entry, and no output is written unless every output could be built.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np

from hqm.data import annotations as ann_io
from hqm.data import classes
from hqm.data.layout import dataset_layout
from hqm.errors import HqmError
from hqm.io import atomic_write, make_temp_dir, read_json, write_json

SPLITS = ("trainval", "test")


def _load_coco(path: Path) -> tuple[dict[int, dict], dict[int, list[dict]]]:
    """Images by id and their annotations in file order."""
    coco = read_json(path)
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list) or not isinstance(coco.get("annotations"), list):
        raise HqmError(f"{path}: expected a COCO mapping with 'images' and 'annotations' lists")
    images: dict[int, dict] = {}
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, dict) or not isinstance(img.get("id"), int) or not isinstance(img.get("file_name"), str):
            raise HqmError(f"{path}: images[{i}] needs an integer 'id' and a string 'file_name'")
        images[img["id"]] = img
    per_image: dict[int, list[dict]] = {i: [] for i in images}
    for i, ann in enumerate(coco["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict) or not all(k in ann for k in ("id", "image_id", "category_id", "bbox")):
            raise HqmError(f"{where}: needs 'id', 'image_id', 'category_id' and 'bbox'")
        if ann["image_id"] not in per_image:
            raise HqmError(f"{where}: image_id {ann['image_id']} is not in 'images'")
        if ann["category_id"] not in classes.VALID_COCO_IDS:
            raise HqmError(f"{where}: category_id {ann['category_id']} is not a valid COCO id")
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise HqmError(f"{where}: bbox must be [x, y, w, h] numbers, got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise HqmError(f"{where}: negative box size {bbox!r}")
        img = images[ann["image_id"]]
        if "width" in img and "height" in img and (
            bbox[0] < 0 or bbox[1] < 0 or bbox[0] + bbox[2] > img["width"] + 1 or bbox[1] + bbox[3] > img["height"] + 1
        ):
            raise HqmError(f"{where}: box {bbox!r} lies outside image {img['file_name']} ({img['width']}x{img['height']})")
        per_image[ann["image_id"]].append(ann)
    return images, per_image


def _load_actions(path: Path) -> list[dict]:
    actions = read_json(path)
    if not isinstance(actions, list) or len(actions) != len(classes.VCOCO_ACTIONS):
        raise HqmError(f"{path}: expected a list of {len(classes.VCOCO_ACTIONS)} action objects")
    for i, act in enumerate(actions):
        where = f"{path}: action {i}"
        if not isinstance(act, dict):
            raise HqmError(f"{where}: not a mapping")
        name = act.get("action_name")
        expected_name, roles = classes.VCOCO_ACTION_ROLES[i]
        if name != expected_name or list(act.get("role_name", [])) != list(roles):
            raise HqmError(f"{where}: expected action '{expected_name}' with roles {list(roles)}, got '{name}'")
        n = len(act.get("ann_id", []))
        if len(act.get("image_id", [])) != n or len(act.get("label", [])) != n:
            raise HqmError(f"{where} ({name}): image_id, ann_id and label lengths differ")
        if len(act.get("role_object_id", [])) != n * len(roles):
            raise HqmError(f"{where} ({name}): role_object_id must hold {len(roles)} x {n} ids")
    return actions


def convert_split(coco_images: dict, coco_anns: dict, actions: list[dict], source: Path) -> list[dict]:
    """One split in QPIC layout (evaluation.md §2.3 steps 1-3)."""
    verb_index = {name: i for i, name in enumerate(classes.VCOCO_VERB_CLASSES)}
    entries: dict[int, dict] = {}
    ann_ids: dict[int, list[int]] = {}

    def register(image_id: int, where: str) -> dict:
        if image_id not in entries:
            if image_id not in coco_images:
                raise HqmError(f"{where}: image_id {image_id} is not in instances_vcoco_all_2014.json")
            anns = coco_anns[image_id]
            entries[image_id] = {
                "file_name": coco_images[image_id]["file_name"],
                "annotations": [
                    {"category_id": a["category_id"],
                     "bbox": [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]}
                    for a in anns
                ],  # fmt: skip
                "hoi_annotation": [],
            }
            ann_ids[image_id] = [a["id"] for a in anns]
        return entries[image_id]

    for act in actions:
        name, roles = act["action_name"], act["role_name"]
        n = len(act["ann_id"])
        role_ids = act["role_object_id"]
        for k in range(n):
            where = f"{source}: action '{name}' person {k}"
            image_id = act["image_id"][k]
            entry = register(image_id, where)
            if act["label"][k] == 0:
                continue
            ids = ann_ids[image_id]
            if act["ann_id"][k] not in ids:
                raise HqmError(f"{where}: person ann_id {act['ann_id'][k]} is not an annotation of image {image_id}")
            subject = ids.index(act["ann_id"][k])
            if len(roles) == 1:
                entry["hoi_annotation"].append({"subject_id": subject, "object_id": -1, "category_id": verb_index[name]})
                continue
            for r in range(1, len(roles)):
                obj_ann = role_ids[r * n + k]
                if obj_ann == 0:
                    obj = -1
                elif obj_ann in ids:
                    obj = ids.index(obj_ann)
                else:
                    raise HqmError(f"{where}: role '{roles[r]}' object {obj_ann} is not an annotation of image {image_id}")
                entry["hoi_annotation"].append(
                    {"subject_id": subject, "object_id": obj, "category_id": verb_index[f"{name}_{roles[r]}"]}
                )
    return list(entries.values())


def correct_matrix_from_prior(prior_path: Path) -> np.ndarray:
    """``corre_vcoco`` ``[29, 80]`` from VSGNet's prior.pickle (evaluation.md §2.3 step 4)."""
    try:
        with open(prior_path, "rb") as handle:
            prior = pickle.load(handle, encoding="latin1")
    except FileNotFoundError:
        raise HqmError(f"{prior_path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise HqmError(f"{prior_path}: unreadable pickle ({type(exc).__name__})") from None
    ncols = len(classes.VCOCO_PRIOR_COLUMN_ORDER)
    if not isinstance(prior, dict) or sorted(prior) != list(range(classes.NUM_OBJECT_CLASSES)):
        raise HqmError(f"{prior_path}: expected a dict with keys 0..79")
    rows = []
    for key in sorted(prior):
        row = np.asarray(prior[key], dtype=np.float64)
        if row.shape != (1, ncols):
            raise HqmError(f"{prior_path}: entry {key} has shape {row.shape}, expected (1, {ncols})")
        rows.append(row)
    alphabetical = np.concatenate(rows, axis=0).T  # [29, 80], rows in alphabetical class order
    order = [classes.VCOCO_PRIOR_COLUMN_ORDER.index(name) for name in classes.VCOCO_VERB_CLASSES]
    return alphabetical[order]


def _read_ids(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text(encoding="utf-8").split()]
    except FileNotFoundError:
        raise HqmError(f"{path}: file not found") from None
    except ValueError as exc:
        raise HqmError(f"{path}: expected one integer image id per line ({exc})") from None


def pick_vcoco_instances(official_data: str | os.PathLike, coco_annotations: str | os.PathLike) -> Path:
    """Build ``instances_vcoco_all_2014.json`` from COCO 2014 ``instances_{train,val}2014.json``.

    What v-coco's ``script_pick_annotations.py`` does (evaluation.md §2.2): merge train then val,
    keep the images of the V-COCO splits and their annotations, in file order. Written into
    ``official_data`` (atomically) and returned.
    """
    official_data, coco_annotations = Path(official_data), Path(coco_annotations)
    splits = official_data / "splits"
    all_ids = splits / "vcoco_all.ids"
    if all_ids.is_file():
        ids = set(_read_ids(all_ids))
    else:
        ids = set(_read_ids(splits / "vcoco_trainval.ids")) | set(_read_ids(splits / "vcoco_test.ids"))
    merged: dict = {"images": [], "annotations": []}
    for name in ("instances_train2014.json", "instances_val2014.json"):
        path = coco_annotations / name
        coco = read_json(path)
        if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
            raise HqmError(f"{path}: expected a COCO file with 'images', 'annotations' and 'categories' lists")
        for key in ("info", "licenses", "categories"):
            merged.setdefault(key, coco.get(key))
        merged["images"] += [im for im in coco["images"] if im.get("id") in ids]
        merged["annotations"] += [a for a in coco["annotations"] if a.get("image_id") in ids]
    missing = ids - {im["id"] for im in merged["images"]}
    if missing:
        raise HqmError(f"{coco_annotations}: {len(missing)} V-COCO image id(s) absent from the COCO 2014 files, e.g. {min(missing)}")
    out = official_data / "instances_vcoco_all_2014.json"
    write_json(out, merged, indent=None)
    return out


def convert_vcoco(official_data: str | os.PathLike, prior_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Convert ``<official_data>/{instances_vcoco_all_2014.json, vcoco/vcoco_*.json}`` to ``out_dir``.

    Returns the number of images and HOI entries per split. Outputs are written only after every
    split converted without error.
    """
    official_data, out_dir = Path(official_data), Path(out_dir)
    images, anns = _load_coco(official_data / "instances_vcoco_all_2014.json")
    converted = {}
    for split in SPLITS:
        path = official_data / "vcoco" / f"vcoco_{split}.json"
        converted[split] = convert_split(images, anns, _load_actions(path), path)
    corre = correct_matrix_from_prior(Path(prior_path))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir)
    try:
        out = dataset_layout("vcoco", tmp.parent)  # file names of hqm.data.layout, written into tmp
        for split, entries in converted.items():
            path = tmp / out.annotations("train" if split == "trainval" else "test").name
            write_json(path, entries, indent=None)
            ann_io.read_vcoco_annotations(path)  # re-read with the shared validator
        with atomic_write(tmp / out.correct_mat.name, "wb") as handle:
            np.save(handle, corre)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(tmp.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {s: {"images": len(e), "hois": sum(len(x["hoi_annotation"]) for x in e)} for s, e in converted.items()}
