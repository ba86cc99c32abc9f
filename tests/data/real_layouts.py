"""Tiny files in the layouts of the real downloads, for the converter tests and the offline rehearsal.

* HICO-DET: ``anno_bbox.mat`` / ``anno.mat`` as MATLAB structs (``bbox_train``, ``bbox_test``,
  ``list_action``; ``anno_test``, ``list_test``) and ``hico_20160224_det.tar.gz`` holding them with
  ``images/{train2015,test2015}/*.jpg`` under the one top folder ``hico_20160224_det/``.
* V-COCO: the s-gupta/v-coco GitHub archive (one top folder ``v-coco-<commit>/`` with
  ``data/vcoco/vcoco_{train,val,trainval,test}.json`` and ``data/splits/vcoco_*.ids``), COCO 2014
  ``annotations_trainval2014.zip`` (``annotations/instances_{train,val}2014.json``) and the image
  zips ``train2014.zip`` / ``val2014.zip`` (top folders ``train2014/``, ``val2014/``).

Images are small real JPEGs with content (coloured boxes where the annotations put people and
objects), so the loaders decode them as they would decode the real ones.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, ImageDraw

from hqm.data import classes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def jpeg(width: int, height: int, boxes: list[list[int]], seed: int) -> bytes:
    """A JPEG of ``width`` x ``height`` px: noisy background, one filled box per [x1, y1, x2, y2]."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(60, 200, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for box in boxes:
        draw.rectangle([int(v) for v in box], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, directory: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 1456272000  # fixed, so the archive (and its sha256) is reproducible
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A zip of ``files`` (name -> bytes), with the folder entries real archives carry."""
    folders = sorted({name[: i + 1] for name in files for i, c in enumerate(name) if c == "/"})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            archive.writestr(zipfile.ZipInfo(folder, (2017, 6, 16, 0, 0, 0)), b"")
        for name, data in sorted(files.items()):
            archive.writestr(zipfile.ZipInfo(name, (2017, 6, 16, 0, 0, 0)), data)
    return path


# ---------------------------------------------------------------------------------------------
# HICO-DET
# ---------------------------------------------------------------------------------------------


def struct(fields: dict, n: int | None = None):
    """A MAT struct array: dict of per-element value lists (n elements) -> numpy record array."""
    n = len(next(iter(fields.values()))) if n is None else n
    arr = np.zeros((1, n), dtype=[(k, object) for k in fields])
    for k, values in fields.items():
        for i, v in enumerate(values):
            arr[0, i][k] = v
    return arr


def mat_boxes(boxes):
    return struct({"x1": [b[0] for b in boxes], "x2": [b[2] for b in boxes],
                   "y1": [b[1] for b in boxes], "y2": [b[3] for b in boxes]}, len(boxes))  # fmt: skip


def hoi(hoi_id, humans, objects, conn, invis=0):
    """One ``hoi`` element: 1-based inclusive boxes [x1, y1, x2, y2], connection rows (human, object)."""
    return {"id": hoi_id, "bboxhuman": mat_boxes(humans), "bboxobject": mat_boxes(objects),
            "connection": np.asarray(conn, dtype=np.float64).reshape(-1, 2), "invis": invis}  # fmt: skip


def image(name, width, height, hois):
    size = struct({"width": [width], "height": [height], "depth": [3]})
    keys = ("id", "bboxhuman", "bboxobject", "connection", "invis")
    return {"filename": name, "size": size, "hoi": struct({k: [h[k] for h in hois] for k in keys}, len(hois))}


def list_action():
    cats = classes.hico_hoi_categories()
    return struct({"nname": [c.object_name for c in cats], "vname": [c.verb_name for c in cats],
                   "vname_ing": [c.verb_name + "ing" for c in cats]})  # fmt: skip


def hoi_id(verb: str, obj: str) -> int:
    """The 1-based HICO-DET HOI id of (verb, object name)."""
    names = classes.coco_object_names()
    return classes.hico_hoi_id_lookup()[(names.index(obj), classes.hico_verb_names().index(verb))]


def _bbox_array(images):
    keys = ("filename", "size", "hoi")
    return struct({k: [im[k] for im in images] for k in keys}, len(images))


def write_hico_mats(folder: Path, train: list, test: list, labels: np.ndarray | None = None) -> tuple[Path, Path]:
    """``anno_bbox.mat`` and ``anno.mat`` in ``folder``; ``labels`` [600, len(test)] defaults to
    1 for every HOI annotated in a test image, -1 elsewhere (the image-level labels of anno.mat)."""
    anno_bbox = folder / "anno_bbox.mat"
    scipy.io.savemat(anno_bbox, {"bbox_train": _bbox_array(train), "bbox_test": _bbox_array(test),
                                 "list_action": list_action().T})  # fmt: skip
    if labels is None:
        labels = -np.ones((600, len(test)))
        for j, im in enumerate(test):
            for h in im["hoi"][0]:
                labels[int(h["id"]) - 1, j] = 1
    names = np.empty((len(test), 1), dtype=object)
    for j, im in enumerate(test):
        names[j, 0] = im["filename"]
    train_names = np.empty((len(train), 1), dtype=object)
    for j, im in enumerate(train):
        train_names[j, 0] = im["filename"]
    anno = folder / "anno.mat"
    scipy.io.savemat(anno, {"anno_test": labels, "list_test": names, "anno_train": np.zeros((600, len(train))),
                            "list_train": train_names})  # fmt: skip
    return anno_bbox, anno


# The first image of every split has its first person and that person's object in this one box
# (cx, cy, w, h relative to the 96 x 72 image): a detector that predicts it scores true positives.
CENTRE_BOX = (0.5, 0.5, 0.6, 0.8)
WIDTH, HEIGHT = 96, 72


def centre_box_xyxy() -> list[float]:
    """CENTRE_BOX in pixels, [x1, y1, x2, y2]."""
    cx, cy, w, h = CENTRE_BOX
    return [(cx - w / 2) * WIDTH, (cy - h / 2) * HEIGHT, (cx + w / 2) * WIDTH, (cy + h / 2) * HEIGHT]


def image_size(i: int) -> tuple[int, int]:
    """(width, height) of the i-th image of a split: 96 x 72, every third one portrait (72 x 96),
    so that evaluation batches mix sizes and pad."""
    return (HEIGHT, WIDTH) if i % 3 == 1 else (WIDTH, HEIGHT)


def _hico_images(split: str, count: int, first: int) -> list[tuple[dict, list[list[int]]]]:
    """``count`` images (:func:`image_size`) with 1-2 HOIs of ride/hold bicycle, kick/hold sports ball."""
    pairs = [(("ride", "bicycle"), ("hold", "bicycle")), (("kick", "sports_ball"),), (("hold", "sports_ball"),)]
    out = []
    for i in range(count):
        shift = 3 * (i % 4)
        human = [5 + shift, 4, 40 + shift, 66]
        w, h = image_size(i)
        obj = [30 + shift, 30, w - 6, 70 - (i % 3)]
        if i == 0:  # 1-based inclusive pixels of the centre box, for person and object
            human = obj = [round(v) + (k < 2) for k, v in enumerate(centre_box_xyxy())]
        hois = [hoi(hoi_id(verb, noun), [human], [obj], [[1, 1]]) for verb, noun in pairs[i % len(pairs)]]
        name = f"HICO_{split}2015_{first + i:08d}.jpg"
        out.append((image(name, w, h, hois), [[b - 1 for b in human], [b - 1 for b in obj]]))
    return out


def hico_archive(path: Path, num_train: int = 6, num_test: int = 3) -> dict[str, int]:
    """``hico_20160224_det.tar.gz`` at ``path``: the mats and JPEGs under ``hico_20160224_det/``."""
    train, test = _hico_images("train", num_train, 1), _hico_images("test", num_test, 1)
    work = path.parent / "hico_mats"
    work.mkdir(parents=True, exist_ok=True)
    anno_bbox, anno = write_hico_mats(work, [im for im, _ in train], [im for im, _ in test])
    top = "hico_20160224_det"
    with tarfile.open(path, "w:gz") as tar:
        for folder in ("", "/images", "/images/train2015", "/images/test2015"):
            _add(tar, top + folder, b"", directory=True)
        _add(tar, f"{top}/README", b"HICO-DET (tiny rehearsal copy)\n")
        _add(tar, f"{top}/anno_bbox.mat", anno_bbox.read_bytes())
        _add(tar, f"{top}/anno.mat", anno.read_bytes())
        for split, images in (("train2015", train), ("test2015", test)):
            for k, (im, boxes) in enumerate(images):
                _add(tar, f"{top}/images/{split}/{im['filename']}", jpeg(*image_size(k), boxes, seed=k + 100 * (split == "test2015")))
    return {"train": len(train), "test": len(test)}


# ---------------------------------------------------------------------------------------------
# V-COCO and COCO 2014
# ---------------------------------------------------------------------------------------------

VCOCO_COMMIT = "489cc4db74f2f10ab4b134f67da3874afbf245ab"
# each V-COCO person does one of these: (action, {role: COCO category id of its object})
_VCOCO_PATTERNS = (
    ("ride", {"instr": 2}),  # bicycle
    ("hold", {"obj": 37}),  # sports ball
    ("kick", {"obj": 37}),
    ("stand", {}),
)


def _vcoco_split(split: str, image_ids: list[int], first_ann: int) -> tuple[list, list, list]:
    """Images, COCO annotations and per-person actions of one split (two persons per image)."""
    prefix = "COCO_train2014" if split in ("train", "val") else "COCO_val2014"
    images, anns, persons = [], [], []
    ann_id = first_ann
    for i, image_id in enumerate(image_ids):
        w, h = image_size(i)
        images.append({"id": image_id, "file_name": f"{prefix}_{image_id:012d}.jpg", "width": w, "height": h})
        obj_id, shift = ann_id + 2, 4 * (i % 3)
        x1, y1, x2, y2 = centre_box_xyxy()
        centre = [x1, y1, x2 - x1, y2 - y1]
        for p in range(2):
            box = centre if i == p == 0 else [4.0 + (w // 2 - 4) * p + shift, 6.0, 26.0, 60.0]
            anns.append({"id": ann_id + p, "image_id": image_id, "category_id": 1, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
            action, roles = _VCOCO_PATTERNS[(i + p) % len(_VCOCO_PATTERNS)]
            persons.append((image_id, ann_id + p, action, {role: obj_id for role in roles}))
        category = 2 if i % 2 == 0 else 37
        box = centre if i == 0 else [20.0 + shift, 40.0, 40.0, 28.0]
        anns.append({"id": obj_id, "image_id": image_id, "category_id": category, "bbox": box,
                     "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
        ann_id += 3
    return images, anns, persons


def _vcoco_actions(persons: list) -> list[dict]:
    """The official action file: 26 objects, every person of the split listed in each."""
    include = {a["action_name"]: a["include"]
               for a in json.loads((FIXTURES / "vcoco_eval/data/vcoco/vcoco_test.json").read_text())}  # fmt: skip
    out = []
    for action, roles in classes.VCOCO_ACTION_ROLES:
        labels = [int(a == action) for _, _, a, _ in persons]
        role_ids = [p[1] for p in persons]
        for role in roles[1:]:
            role_ids += [objs.get(role, 0) if a == action else 0 for _, _, a, objs in persons]
        out.append({"action_name": action, "role_name": list(roles), "include": include[action],
                    "image_id": [p[0] for p in persons], "ann_id": [p[1] for p in persons],
                    "label": labels, "role_object_id": role_ids})  # fmt: skip
    return out


def vcoco_files(out_dir: Path, num_per_split: int = 3) -> dict[str, Path]:
    """The v-coco commit zip, ``annotations_trainval2014.zip``, ``train2014.zip`` and ``val2014.zip``."""
    categories = json.loads((FIXTURES / "vcoco_eval/data/instances_vcoco_all_2014.json").read_text())["categories"]
    n = num_per_split
    splits = {"train": list(range(9, 9 + n)), "val": list(range(109, 109 + n)), "test": list(range(200009, 200009 + n))}
    data, coco, jpgs = {}, {"train": ([], []), "val": ([], [])}, {"train2014": {}, "val2014": {}}
    persons_of = {}
    for k, (split, ids) in enumerate(splits.items()):
        images, anns, persons = _vcoco_split(split, ids, 1000 * (k + 1))
        persons_of[split] = persons
        coco_split = "val" if split == "test" else "train"
        coco[coco_split][0].extend(images)
        coco[coco_split][1].extend(anns)
        for im in images:
            boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                     for a in anns if a["image_id"] == im["id"]]  # fmt: skip
            jpgs[f"{coco_split}2014"][im["file_name"]] = jpeg(im["width"], im["height"], boxes, seed=im["id"] % 997)
    persons_of["trainval"] = persons_of["train"] + persons_of["val"]
    splits["trainval"] = splits["train"] + splits["val"]
    splits["all"] = splits["trainval"] + splits["test"]
    top = f"v-coco-{VCOCO_COMMIT}"
    data[f"{top}/README.md"] = b"# V-COCO (tiny rehearsal copy)\n"
    for split, ids in splits.items():
        data[f"{top}/data/splits/vcoco_{split}.ids"] = "".join(f"{i}\n" for i in sorted(ids)).encode()
        if split != "all":
            data[f"{top}/data/vcoco/vcoco_{split}.json"] = json.dumps(_vcoco_actions(persons_of[split])).encode()
    # a COCO image outside V-COCO: script_pick_annotations drops it
    coco["train"][0].append({"id": 7, "file_name": "COCO_train2014_000000000007.jpg", "width": 96, "height": 72})
    coco["train"][1].append({"id": 7, "image_id": 7, "category_id": 1, "bbox": [1.0, 1.0, 9.0, 9.0], "area": 81.0,
                             "iscrowd": 0})  # fmt: skip
    annotations = {f"annotations/instances_{s}2014.json": json.dumps(
        {"info": {"year": 2014}, "licenses": [], "images": ims, "annotations": anns, "categories": categories}).encode()
        for s, (ims, anns) in coco.items()}  # fmt: skip
    return {
        "vcoco": write_zip(out_dir / f"{VCOCO_COMMIT}.zip", data),
        "coco_annotations": write_zip(out_dir / "annotations_trainval2014.zip", annotations),
        "train_images": write_zip(out_dir / "train2014.zip", {f"train2014/{k}": v for k, v in jpgs["train2014"].items()}),
        "val_images": write_zip(out_dir / "val2014.zip", {f"val2014/{k}": v for k, v in jpgs["val2014"].items()}),
    }
