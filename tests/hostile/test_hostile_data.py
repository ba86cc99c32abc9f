"""Hostile inputs of the data area: annotation files, images, make-synthetic, convert-hico.

Annotation and image cases run ``hqm check-dataset``, which reads a root through the same parser
and image loader as training (``hqm.data.annotations.read_split``, ``hqm.data.images.load_rgb``),
so each row is also what ``hqm train`` would report at load time.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from hostile_harness import Case, check_case, parametrize

from hqm.config import SyntheticConfig
from hqm.data.synthetic import MARKER, make_synthetic

TINY = SyntheticConfig(seed=11, num_train=4, num_test=3, image_size=96)
TEST_IMAGE = "HICO_test2015_00000002.jpg"  # second entry of test_hico.json
TRAIN_IMAGE = "HICO_train2015_00000003.jpg"  # third entry of trainval_hico.json
CHECK_HICO = ("check-dataset", "--format", "hico", "--root", "{tmp}/root")
CHECK_VCOCO = ("check-dataset", "--format", "vcoco", "--root", "{tmp}/root")


def _root(fmt: str = "hico") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        make_synthetic(TINY, fmt, tmp / "root")
        return tmp / "root"

    return make


def _edit_json(rel: str, index: int, edit: Callable[[dict], None], fmt: str = "hico") -> Callable[[Path], None]:
    """A fresh root whose annotation file ``rel`` has entry ``index`` changed by ``edit``."""

    def setup(tmp: Path) -> None:
        root = _root(fmt)(tmp)
        path = root / rel
        entries = json.loads(path.read_text())
        edit(entries[index])
        path.write_text(json.dumps(entries))  # NaN is written as the bare token NaN, as numpy-made files do

    return setup


def _set(path: tuple, value) -> Callable[[dict], None]:
    def edit(entry: dict) -> None:
        node = entry
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(key: str) -> Callable[[dict], None]:
    return lambda entry: entry.pop(key)


def _image(name: str, change: Callable[[Path], None], folder: str = "test2015") -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        change(_root()(tmp) / "images" / folder / name)

    return setup


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:300])


def _bomb(path: Path) -> None:
    """A valid 1-bit PNG header declaring 30000 x 30000 pixels (> 2x PIL's MAX_IMAGE_PIXELS)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip


def _foreign_folder(tmp: Path) -> None:
    (tmp / "results").mkdir()
    (tmp / "results" / "thesis.tex").write_text("months of work\n")


def _broken_mat(tmp: Path) -> None:
    (tmp / "anno_bbox.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 100 + b"garbage" * 20)


def _marker_then_foreign(tmp: Path) -> None:
    make_synthetic(TINY, "hico", tmp / "data")
    (tmp / "data" / MARKER).unlink()  # a root whose marker is gone is no longer the tool's


def _bbox(index: int) -> tuple:
    return ("annotations", index, "bbox")


ANN_TEST = "annotations/test_hico.json"
ANN_TRAIN = "annotations/trainval_hico.json"
IMG = f"image '{TEST_IMAGE}'"

CASES = [
    Case("nan_box", _edit_json(ANN_TEST, 1, _set(_bbox(0), [1.0, 2.0, float("nan"), 30.0])), CHECK_HICO,
         ("test_hico.json", IMG, "annotations[0].bbox", "not finite")),
    Case("x2_below_x1_in_training_file", _edit_json(ANN_TRAIN, 2, _set(_bbox(1), [40, 5, 20, 30])), CHECK_HICO,
         ("trainval_hico.json", f"image '{TRAIN_IMAGE}'", "annotations[1].bbox", "x2<x1")),
    Case("missing_hoi_annotation_key", _edit_json(ANN_TEST, 1, _drop("hoi_annotation")), CHECK_HICO,
         ("test_hico.json", IMG, "'hoi_annotation' must be lists")),
    Case("subject_id_is_a_string", _edit_json(ANN_TEST, 1, _set(("hoi_annotation", 0, "subject_id"), "0")),
         CHECK_HICO, ("test_hico.json", IMG, "hoi_annotation[0].subject_id", "expected an integer")),
    Case("bbox_is_a_string", _edit_json(ANN_TRAIN, 2, _set(_bbox(0), "1 2 3 4")), CHECK_HICO,
         ("trainval_hico.json", f"image '{TRAIN_IMAGE}'", "annotations[0].bbox", "4 numbers")),
    Case("hoi_box_index_out_of_range", _edit_json(ANN_TEST, 1, _set(("hoi_annotation", 0, "object_id"), 99)),
         CHECK_HICO, ("test_hico.json", IMG, "hoi_annotation[0].object_id", "99", "outside")),
    Case("unknown_coco_category_id", _edit_json(ANN_TEST, 1, _set(("annotations", 0, "category_id"), 12)),
         CHECK_HICO, ("test_hico.json", IMG, "annotations[0].category_id", "12")),
    Case("hico_verb_id_out_of_range", _edit_json(ANN_TEST, 1, _set(("hoi_annotation", 0, "category_id"), 118)),
         CHECK_HICO, ("test_hico.json", IMG, "hoi_annotation[0].category_id", "118")),
    Case("vcoco_nan_box_in_training_file",
         _edit_json("annotations/trainval_vcoco.json", 0, _set(_bbox(0), [float("nan")] * 4), fmt="vcoco"),
         CHECK_VCOCO, ("trainval_vcoco.json", "image 'COCO_train2014_000000000001.jpg'", "annotations[0].bbox")),
    Case("missing_image_file", _image(TEST_IMAGE, Path.unlink), CHECK_HICO,
         (TEST_IMAGE, "image file not found", "listed in test_hico.json")),
    Case("truncated_image", _image(TEST_IMAGE, _truncate), CHECK_HICO,
         (TEST_IMAGE, "unreadable image", "listed in test_hico.json")),
    Case("text_file_as_image", _image(TRAIN_IMAGE, lambda p: p.write_text("<html>"), "train2015"), CHECK_HICO,
         (TRAIN_IMAGE, "unreadable image", "listed in trainval_hico.json")),
    Case("decompression_bomb_image", _image(TEST_IMAGE, _bomb), CHECK_HICO,
         (TEST_IMAGE, "decompression bomb", "listed in test_hico.json")),
    Case("make_synthetic_into_a_foreign_folder", _foreign_folder,
         ("make-synthetic", "--format", "hico", "--out", "{tmp}/results", "--num-train", "2", "--num-test", "1"),
         ("{tmp}/results", "not written by hqm make-synthetic", MARKER),
         outputs=("results/annotations", "results/images")),
    Case("make_synthetic_into_a_root_without_its_marker", _marker_then_foreign,
         ("make-synthetic", "--format", "hico", "--out", "{tmp}/data", "--num-train", "2", "--num-test", "1"),
         ("{tmp}/data", "not written by hqm make-synthetic"), outputs=(f"data/{MARKER}",)),
    Case("convert_hico_broken_mat", _broken_mat,
         ("convert-hico", "--anno-bbox", "{tmp}/anno_bbox.mat", "--out", "{tmp}/out/annotations"),
         ("{tmp}/anno_bbox.mat", "unreadable .mat file"),
         outputs=("out/annotations/trainval_hico.json", "out/annotations/test_hico.json")),
]


@parametrize(CASES)
def test_hostile_data(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
