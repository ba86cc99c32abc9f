"""Converters: HICO-DET .mat files built in the official struct layout, the V-COCO fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from real_layouts import hoi as _hoi
from real_layouts import hoi_id as _hoi_id
from real_layouts import image as _image
from real_layouts import write_hico_mats

from hqm.cli import main
from hqm.data import classes
from hqm.data.hico_convert import convert_hico
from hqm.data.vcoco_convert import convert_vcoco
from hqm.errors import HqmError

VCOCO_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vcoco_eval"


def _write_mats(tmp_path, train=None, test=None):
    ride, hold = _hoi_id("ride", "bicycle"), _hoi_id("hold", "bicycle")
    kick = _hoi_id("kick", "sports_ball")
    train = train or [
        _image("HICO_train2015_00000007.jpg", 100, 80, [
            _hoi(ride, [[10, 5, 40, 70]], [[20, 30, 90, 79]], [[1, 1]]),
            _hoi(hold, [[10, 5, 40, 70], [50, 5, 60, 60]], [[20, 30, 90, 79]], [[1, 1], [2, 1]]),
            _hoi(kick, [[1, 1, 5, 5]], [[2, 2, 6, 6]], [[1, 1]], invis=1),
        ]),
    ]  # fmt: skip
    test = test or [
        _image("HICO_test2015_00000001.jpg", 64, 48, [
            _hoi(ride, [[1, 2, 30, 40]], [[5, 20, 60, 48]], [[1, 1]]),
            _hoi(hold, [[1, 2, 30, 40]], [[5, 20, 60, 48]], [[1, 1]]),
        ]),
        _image("HICO_test2015_00000002.jpg", 64, 48, []),
    ]  # fmt: skip
    labels = -np.ones((600, 2))
    labels[ride - 1, 0] = 1
    labels[kick - 1, 1] = 0  # ambiguous is not positive
    return write_hico_mats(tmp_path, train, test, labels)


def test_hico_conversion_follows_the_spec(tmp_path):
    anno_bbox, anno = _write_mats(tmp_path)
    summary = convert_hico(anno_bbox, anno, tmp_path / "out")
    assert summary == {"train": {"images": 1, "hois": 3}, "test": {"images": 2, "hois": 2}}
    train = json.loads((tmp_path / "out" / "trainval_hico.json").read_text())
    test = json.loads((tmp_path / "out" / "test_hico.json").read_text())
    ride, hold = _hoi_id("ride", "bicycle"), _hoi_id("hold", "bicycle")
    verb = {n: classes.hico_verb_names().index(n) + 1 for n in ("ride", "hold")}
    assert train == [{
        "file_name": "HICO_train2015_00000007.jpg", "img_id": 7,
        "annotations": [{"bbox": [9, 4, 39, 69], "category_id": 1}, {"bbox": [19, 29, 89, 78], "category_id": 2},
                        {"bbox": [49, 4, 59, 59], "category_id": 1}],
        "hoi_annotation": [
            {"subject_id": 0, "object_id": 1, "category_id": verb["ride"], "hoi_category_id": ride},
            {"subject_id": 0, "object_id": 1, "category_id": verb["hold"], "hoi_category_id": hold},
            {"subject_id": 2, "object_id": 1, "category_id": verb["hold"], "hoi_category_id": hold}],
    }]  # fmt: skip
    first = test[0]
    assert set(first) == {"file_name", "annotations", "hoi_annotation"}
    assert [a["bbox"] for a in first["annotations"]] == [[1, 2, 30, 40], [5, 20, 60, 48]] * 2  # repeated, 1-based
    assert first["hoi_annotation"] == [{"subject_id": 0, "object_id": 1, "category_id": verb["ride"]},
                                       {"subject_id": 2, "object_id": 3, "category_id": verb["hold"]}]  # fmt: skip
    assert test[1] == {"file_name": "HICO_test2015_00000002.jpg", "annotations": [], "hoi_annotation": []}
    assert np.array_equal(np.load(tmp_path / "out" / "corre_hico.npy"), classes.hico_validity_matrix())
    known = json.loads((tmp_path / "out" / "known_objects_test.json").read_text())
    assert known["images"] == {"HICO_test2015_00000001.jpg": [1], "HICO_test2015_00000002.jpg": []}


def test_hico_box_outside_image_is_an_error_and_writes_nothing(tmp_path):
    ride = _hoi_id("ride", "bicycle")
    train = [_image("HICO_train2015_00000003.jpg", 50, 50, [_hoi(ride, [[1, 1, 20, 60]], [[1, 1, 9, 9]], [[1, 1]])])]
    anno_bbox, anno = _write_mats(tmp_path, train=train)
    with pytest.raises(HqmError, match=r"anno_bbox.mat: bbox_train\(1\) \(HICO_train2015_00000003.jpg\) hoi\(1\): box .* outside"):
        convert_hico(anno_bbox, anno, tmp_path / "out")
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["anno.mat", "anno_bbox.mat"]
    rc = main(["convert-hico", "--anno-bbox", str(anno_bbox), "--out", str(tmp_path / "out"), "--clip-boxes"])
    assert rc == 0
    train_out = json.loads((tmp_path / "out" / "trainval_hico.json").read_text())
    assert train_out[0]["annotations"][0]["bbox"] == [0, 0, 19, 49]  # y2 60 clipped to the height 50, 0-based


def test_hico_bad_connection_and_bad_files(tmp_path):
    ride = _hoi_id("ride", "bicycle")
    train = [_image("HICO_train2015_00000003.jpg", 50, 50, [_hoi(ride, [[1, 1, 20, 20]], [[1, 1, 9, 9]], [[1, 2]])])]
    anno_bbox, anno = _write_mats(tmp_path, train=train)
    with pytest.raises(HqmError, match=r"connection \(1, 2\) refers to a missing box"):
        convert_hico(anno_bbox, anno, tmp_path / "out")
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(anno_bbox.read_bytes()[:300])
    with pytest.raises(HqmError, match="truncated.mat: unreadable .mat file"):
        convert_hico(truncated, None, tmp_path / "out")
    scipy.io.savemat(tmp_path / "empty.mat", {"x": np.zeros(1)})
    with pytest.raises(HqmError, match="missing variable"):
        convert_hico(tmp_path / "empty.mat", None, tmp_path / "out")


def test_hico_list_action_must_match_the_hoi_list(tmp_path):
    anno_bbox, _ = _write_mats(tmp_path)
    mat = scipy.io.loadmat(anno_bbox)
    mat["list_action"][3, 0]["vname"] = np.array(["kick"])
    scipy.io.savemat(anno_bbox, {k: v for k, v in mat.items() if not k.startswith("__")})
    with pytest.raises(HqmError, match=r"list_action\(4\)"):
        convert_hico(anno_bbox, None, tmp_path / "out")


def test_vcoco_conversion_reproduces_the_fixture(tmp_path):
    rc = main(["convert-vcoco", "--official-data", str(VCOCO_FIXTURE / "data"),
               "--prior", str(VCOCO_FIXTURE / "prior.pickle"), "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    for name in ("trainval_vcoco.json", "test_vcoco.json"):
        assert json.loads((tmp_path / name).read_text()) == json.loads((VCOCO_FIXTURE / "annotations" / name).read_text())
    assert np.array_equal(np.load(tmp_path / "corre_vcoco.npy"), np.load(VCOCO_FIXTURE / "annotations" / "corre_vcoco.npy"))


def _fixture_copy(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(VCOCO_FIXTURE / "data", data)
    for p in data.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return data


def test_vcoco_bad_inputs_name_file_and_entry(tmp_path):
    data = _fixture_copy(tmp_path)
    prior = VCOCO_FIXTURE / "prior.pickle"
    test_file = data / "vcoco" / "vcoco_test.json"
    original = test_file.read_text()
    test_file.write_text(original[: len(original) // 2])
    with pytest.raises(HqmError, match="vcoco_test.json: malformed JSON"):
        convert_vcoco(data, prior, tmp_path / "out")
    actions = json.loads(original)
    actions[3]["image_id"][0] = 999_999_999
    test_file.write_text(json.dumps(actions))
    with pytest.raises(HqmError, match=r"vcoco_test.json: action 'ride' person 0: image_id 999999999"):
        convert_vcoco(data, prior, tmp_path / "out")
    test_file.write_text(original)
    coco = json.loads((data / "instances_vcoco_all_2014.json").read_text())
    coco["annotations"][5]["category_id"] = 12
    (data / "instances_vcoco_all_2014.json").write_text(json.dumps(coco))
    with pytest.raises(HqmError, match=r"annotations\[5\]: category_id 12"):
        convert_vcoco(data, prior, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.pickle").write_bytes(b"\x80\x02garbage")
    shutil.copy(VCOCO_FIXTURE / "data" / "instances_vcoco_all_2014.json", data / "instances_vcoco_all_2014.json")
    with pytest.raises(HqmError, match="bad.pickle: unreadable pickle"):
        convert_vcoco(data, tmp_path / "bad.pickle", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pick_instances_from_coco_2014_files(tmp_path):
    data = _fixture_copy(tmp_path)
    full = json.loads((data / "instances_vcoco_all_2014.json").read_text())
    (data / "instances_vcoco_all_2014.json").unlink()
    coco = tmp_path / "coco"
    coco.mkdir()
    extra_image = {"id": 7, "file_name": "COCO_train2014_000000000007.jpg", "width": 10, "height": 10}
    extra_ann = {"id": 1, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}
    for split, prefix in (("train", "COCO_train2014"), ("val", "COCO_val2014")):
        images = [im for im in full["images"] if im["file_name"].startswith(prefix)]
        ids = {im["id"] for im in images}
        anns = [a for a in full["annotations"] if a["image_id"] in ids]
        if split == "train":
            images, anns = [extra_image, *images], [extra_ann, *anns]  # not a V-COCO image: dropped
        (coco / f"instances_{split}2014.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": full["categories"]}))
    rc = main(["convert-vcoco", "--official-data", str(data), "--prior", str(VCOCO_FIXTURE / "prior.pickle"),
               "--coco-annotations", str(coco), "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0
    rebuilt = json.loads((data / "instances_vcoco_all_2014.json").read_text())
    assert rebuilt["images"] == full["images"] and rebuilt["annotations"] == full["annotations"]
    assert json.loads((tmp_path / "out" / "test_vcoco.json").read_text()) == json.loads(
        (VCOCO_FIXTURE / "annotations" / "test_vcoco.json").read_text())
