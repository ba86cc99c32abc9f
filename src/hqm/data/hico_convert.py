"""HICO-DET ``anno_bbox.mat`` (+ ``anno.mat``) -> PPDM-format annotation files, pure Python 3.

evaluation.md §1.4: ``test_hico.json`` keeps the 1-based MAT coordinates and repeats the boxes of
every HOI category of an image; ``trainval_hico.json`` is 0-based, carries ``img_id`` and
``hoi_category_id`` and shares one box per person / object across the HOIs of an image (identical
boxes of the same category are merged; the released file's own merge rule is undocumented).
``corre_hico.npy`` follows from ``list_action``; ``known_objects_test.json`` lists, per test image,
the objects with at least one positive image-level HOI label in ``anno.mat`` (the Known-Object
setting). Outputs are built in a temporary folder, re-read with :mod:`hqm.data.annotations`, and
only then moved into place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import scipy.io

from hqm.data import annotations as ann_io
from hqm.data import classes
from hqm.data.layout import dataset_layout
from hqm.errors import HqmError
from hqm.io import atomic_write, make_temp_dir, write_json


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict:
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for damaged files
        raise HqmError(f"{path}: unreadable .mat file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise HqmError(f"{path}: missing variable(s) {', '.join(missing)}")
    return mat


def _str(value) -> str:
    arr = np.asarray(value).ravel()
    if arr.size != 1:
        raise ValueError("expected one string")
    return str(arr[0])


def _int(value) -> int:
    arr = np.asarray(value).ravel()
    if arr.size != 1:
        raise ValueError("expected one number")
    return int(arr[0])


def _structs(value) -> list:
    """Elements of a MAT struct array (any shape, possibly empty)."""
    arr = np.asarray(value)
    return [] if arr.size == 0 else list(arr.ravel(order="F"))


def _boxes(value) -> list[list[int]]:
    """MAT box struct array (fields x1, x2, y1, y2) -> [[x1, y1, x2, y2], ...]."""
    return [[_int(b["x1"]), _int(b["y1"]), _int(b["x2"]), _int(b["y2"])] for b in _structs(value)]


def hoi_table(list_action, path: Path) -> list[tuple[int, int]]:
    """``list_action`` -> (object COCO id, verb id) per HOI id; must match the project's table."""
    entries = _structs(list_action)
    if len(entries) != 600:
        raise HqmError(f"{path}: list_action has {len(entries)} entries, expected 600")
    names = classes.coco_object_names()
    verbs = classes.hico_verb_names()
    table = []
    for k, entry in enumerate(entries):
        try:
            obj = _str(entry["nname"]).strip().replace(" ", "_")
            verb = _str(entry["vname"]).strip().replace(" ", "_")
        except (ValueError, KeyError, IndexError):
            raise HqmError(f"{path}: list_action({k + 1}) needs string fields nname and vname") from None
        if obj not in names or verb not in verbs:
            raise HqmError(f"{path}: list_action({k + 1}): unknown object '{obj}' or verb '{verb}'")
        expected = classes.hico_hoi_categories()[k]
        if (names.index(obj), verbs.index(verb)) != (expected.object_index, expected.verb_index):
            raise HqmError(
                f"{path}: list_action({k + 1}) is ({verb}, {obj}), expected "
                f"({expected.verb_name}, {expected.object_name}) from the HICO-DET HOI list"
            )
        table.append((classes.VALID_COCO_IDS[names.index(obj)], verbs.index(verb) + 1))
    return table


def _image_hois(entry, path: Path, where: str, table, clip_boxes: bool = False) -> tuple[str, list[tuple[int, list, list, list]]]:
    """(file name, [(hoi id, human boxes, object boxes, connections)]) of the visible HOIs.

    A box outside the image is an error, or is clipped to it with ``clip_boxes``.
    """
    try:
        file_name = _str(entry["filename"])
        size = _structs(entry["size"])[0]
        width, height = _int(size["width"]), _int(size["height"])
    except (ValueError, KeyError, IndexError):
        raise HqmError(f"{path}: {where}: needs filename and size.width/height") from None
    where = f"{where} ({file_name})"
    out = []
    for k, hoi in enumerate(_structs(entry["hoi"])):
        try:
            hoi_id = _int(hoi["id"])
            invis = _int(hoi["invis"])
            humans, objects = _boxes(hoi["bboxhuman"]), _boxes(hoi["bboxobject"])
            conn = np.asarray(hoi["connection"]).astype(np.int64).reshape(-1, 2) if invis == 0 else np.zeros((0, 2))
        except (ValueError, KeyError, IndexError, TypeError):
            raise HqmError(f"{path}: {where} hoi({k + 1}): needs id, invis, bboxhuman, bboxobject, connection") from None
        if not 1 <= hoi_id <= 600:
            raise HqmError(f"{path}: {where} hoi({k + 1}): HOI id {hoi_id} outside 1..600")
        if invis:
            continue
        for box in humans + objects:
            x1, y1, x2, y2 = box
            if clip_boxes:
                box[:] = [min(max(x1, 1), width), min(max(y1, 1), height), min(max(x2, 1), width), min(max(y2, 1), height)]
                x1, y1, x2, y2 = box
            if not (1 <= x1 <= x2 <= width and 1 <= y1 <= y2 <= height):
                raise HqmError(
                    f"{path}: {where} hoi({k + 1}): box {box} lies outside the {width}x{height} image"
                    + ("" if clip_boxes else " (--clip-boxes clips such boxes)")
                )
        for h, o in conn.tolist():
            if not (1 <= h <= len(humans) and 1 <= o <= len(objects)):
                raise HqmError(f"{path}: {where} hoi({k + 1}): connection ({h}, {o}) refers to a missing box")
        out.append((hoi_id, humans, objects, conn.tolist()))
    return file_name, out


def convert_test_image(file_name: str, hois, table) -> dict:
    """PPDM test layout: boxes repeated per HOI category, 1-based coordinates."""
    annotations, hoi_annotation = [], []
    for hoi_id, humans, objects, conn in hois:
        obj_coco, verb_id = table[hoi_id - 1]
        h0 = len(annotations)
        annotations += [{"bbox": list(b), "category_id": 1} for b in humans]
        o0 = len(annotations)
        annotations += [{"bbox": list(b), "category_id": obj_coco} for b in objects]
        hoi_annotation += [{"subject_id": h0 + h - 1, "object_id": o0 + o - 1, "category_id": verb_id} for h, o in conn]
    return {"file_name": file_name, "annotations": annotations, "hoi_annotation": hoi_annotation}


def convert_train_image(file_name: str, hois, table) -> dict:
    """PPDM train layout: 0-based, img_id, hoi_category_id, identical boxes shared."""
    annotations: list[dict] = []
    index: dict[tuple, int] = {}

    def box_index(box, category):
        key = (category, *[v - 1 for v in box])
        if key not in index:
            index[key] = len(annotations)
            annotations.append({"bbox": list(key[1:]), "category_id": category})
        return index[key]

    hoi_annotation, seen = [], set()
    for hoi_id, humans, objects, conn in hois:
        obj_coco, verb_id = table[hoi_id - 1]
        for h, o in conn:
            s, ob = box_index(humans[h - 1], 1), box_index(objects[o - 1], obj_coco)
            if (s, ob, verb_id) in seen:
                continue
            seen.add((s, ob, verb_id))
            hoi_annotation.append({"subject_id": s, "object_id": ob, "category_id": verb_id, "hoi_category_id": hoi_id})
    try:
        img_id = int(file_name[-12:-4])
    except ValueError:
        raise HqmError(f"anno_bbox.mat: image {file_name}: name does not end in an 8-digit id") from None
    return {"file_name": file_name, "img_id": img_id, "annotations": annotations, "hoi_annotation": hoi_annotation}


def known_objects(anno_path: Path, table) -> dict[str, list[int]]:
    """Per test image, object indices with a positive image-level HOI label (anno_test == 1)."""
    mat = _loadmat(anno_path, ("anno_test", "list_test"))
    labels = np.asarray(mat["anno_test"])
    names = [_str(n) for n in np.asarray(mat["list_test"]).ravel()]
    if labels.shape != (600, len(names)):
        raise HqmError(f"{anno_path}: anno_test has shape {labels.shape}, expected (600, {len(names)})")
    obj_of_hoi = np.array([classes.coco_id_to_index(coco) for coco, _ in table])
    out = {}
    for j, name in enumerate(names):
        out[name] = sorted({int(o) for o in obj_of_hoi[labels[:, j] == 1]})
    return out


def convert_hico(anno_bbox: str | os.PathLike, anno: str | os.PathLike | None, out_dir: str | os.PathLike,
                 clip_boxes: bool = False) -> dict:  # fmt: skip
    """Write ``trainval_hico.json``, ``test_hico.json``, ``corre_hico.npy`` (+ known objects) to ``out_dir``."""
    anno_bbox, out_dir = Path(anno_bbox), Path(out_dir)
    mat = _loadmat(anno_bbox, ("bbox_train", "bbox_test", "list_action"))
    table = hoi_table(mat["list_action"], anno_bbox)
    splits = {}
    for key, convert in (("bbox_train", convert_train_image), ("bbox_test", convert_test_image)):
        entries = []
        for i, entry in enumerate(_structs(mat[key])):
            file_name, hois = _image_hois(entry, anno_bbox, f"{key}({i + 1})", table, clip_boxes)
            entries.append(convert(file_name, hois, table))
        splits[key] = entries
    corre = np.zeros((classes.NUM_HICO_VERBS, classes.NUM_OBJECT_CLASSES), dtype=np.float64)
    for coco, verb_id in table:
        corre[verb_id - 1, classes.coco_id_to_index(coco)] = 1.0
    known = known_objects(Path(anno), table) if anno is not None else None

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir)
    try:
        out = dataset_layout("hico", tmp.parent)  # file names of hqm.data.layout, written into tmp
        train, test = tmp / out.annotations("train").name, tmp / out.annotations("test").name
        corre_path, known_path = tmp / out.correct_mat.name, tmp / out.known_objects.name
        write_json(train, splits["bbox_train"], indent=None)
        write_json(test, splits["bbox_test"], indent=None)
        with atomic_write(corre_path, "wb") as handle:
            np.save(handle, corre)
        if known is not None:
            write_json(known_path, {"format": "hico_known_objects", "images": known}, indent=None)
            ann_io.read_known_objects(known_path)
        # re-read every output with the shared validators before it replaces anything
        ann_io.read_hico_annotations(train)
        ann_io.read_hico_annotations(test)
        ann_io.read_correct_mat(corre_path, classes.NUM_HICO_VERBS)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(tmp.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "train": {"images": len(splits["bbox_train"]), "hois": sum(len(e["hoi_annotation"]) for e in splits["bbox_train"])},
        "test": {"images": len(splits["bbox_test"]), "hois": sum(len(e["hoi_annotation"]) for e in splits["bbox_test"])},
    }
