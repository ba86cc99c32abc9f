"""Datasets: QPIC targets, grouping by pair, dropped HOIs, V-COCO missing objects, collate."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hqm.cli import main
from hqm.config import AugmentConfig, DatasetConfig
from hqm.data import classes
from hqm.data.annotations import read_hico_annotations, read_vcoco_annotations
from hqm.data.datasets import HOIDataset, build_dataset, collate, dataset_meta
from hqm.data.transforms import Compose, RandomHorizontalFlip, crop
from hqm.errors import HqmError

SMALL = AugmentConfig(scales=[64, 80, 96], max_size=160, crop_resize_scales=[64, 96], crop_min_size=40,
                      crop_max_size=80, test_scale=96)  # fmt: skip


def test_meta_reports_class_counts(hico_root, vcoco_root):
    hico = dataset_meta(DatasetConfig(format="hico", root=str(hico_root)))
    vcoco = dataset_meta(DatasetConfig(format="vcoco", root=str(vcoco_root)))
    assert (hico.num_obj_classes, hico.num_verb_classes, hico.correct_mat.shape) == (80, 117, (117, 80))
    assert (vcoco.num_obj_classes, vcoco.num_verb_classes, vcoco.correct_mat.shape) == (81, 29, (29, 80))
    assert vcoco.official_root == vcoco_root / "official"


def test_hico_test_item_matches_the_file(hico_root):
    ds = build_dataset(DatasetConfig(format="hico", root=str(hico_root)), "test", SMALL)
    entries = json.loads((hico_root / "annotations" / "test_hico.json").read_text())
    image, target = ds[1]
    entry = entries[1]
    assert image.shape == (3, 96, 96) and target["file_name"] == entry["file_name"]
    assert target["orig_size"].tolist() == [96, 96] and target["aug_size"].tolist() == [96, 96]
    # one target per distinct (subject, object) box pair, verbs multi-hot
    pairs = {}
    for h in entry["hoi_annotation"]:
        pairs.setdefault((h["subject_id"], h["object_id"]), set()).add(h["category_id"] - 1)
    assert len(target["obj_labels"]) == len(pairs)
    for k, ((s, o), verbs) in enumerate(pairs.items()):
        assert set(target["verb_labels"][k].nonzero().flatten().tolist()) == verbs
        assert target["obj_labels"][k] == classes.coco_id_to_index(entry["annotations"][o]["category_id"])
        x1, y1, x2, y2 = entry["annotations"][s]["bbox"]
        expected = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / 96
        assert torch.allclose(target["sub_boxes"][k], expected, atol=1e-6)


def test_train_items_have_boxes_in_range_across_augmentations(hico_root):
    torch.manual_seed(0)
    ds = build_dataset(DatasetConfig(format="hico", root=str(hico_root)), "train", SMALL)
    for i in range(len(ds)):
        image, t = ds[i]
        assert t["aug_size"].tolist() == list(image.shape[1:])
        for boxes in (t["sub_boxes"], t["obj_boxes"]):
            assert ((boxes >= 0) & (boxes <= 1)).all()
        assert t["verb_labels"].shape == (len(t["obj_labels"]), 117)
        assert (t["verb_labels"].sum(1) >= 1).all()


def test_crop_that_removes_the_object_drops_its_hoi(hico_root):
    meta = dataset_meta(DatasetConfig(format="hico", root=str(hico_root)))
    ds = HOIDataset(meta, "train", Compose([]))
    index = next(i for i, r in enumerate(ds.records) if len(r.hois))
    rec = ds.records[index]
    _, target_full = ds[index]
    s, o, _ = rec.hois[0].tolist()
    x1, y1, x2, y2 = rec.boxes[o]
    # keep only a strip left or right of the object: the object box vanishes
    w = 96
    region = (0, 0, 96, int(x1)) if x1 >= 8 else (0, int(np.ceil(x2)) + 1, 96, w - int(np.ceil(x2)) - 1)
    ds.transform = lambda img, b, ids: crop(img, b, ids, *region)
    _, target = ds[index]
    assert len(target["obj_labels"]) < len(target_full["obj_labels"])


def test_vcoco_missing_object_gets_label_80_and_zero_box(vcoco_root):
    ds = build_dataset(DatasetConfig(format="vcoco", root=str(vcoco_root)), "test", SMALL)
    seen = False
    for i in range(len(ds)):
        _, t = ds[i]
        missing = t["obj_labels"] == classes.VCOCO_MISSING_OBJECT
        assert (t["obj_boxes"][missing] == 0).all() and (t["obj_boxes"][~missing].sum(1) > 0).all()
        seen |= bool(missing.any())
    assert seen


def test_collate_pads_bottom_right_and_masks_padding():
    a = (torch.ones(3, 4, 6), {"i": 0})
    b = (torch.full((3, 5, 3), 2.0), {"i": 1})
    images, mask, targets = collate([a, b])
    assert images.shape == (2, 3, 5, 6) and mask.shape == (2, 5, 6)
    assert (images[0, :, :4, :6] == 1).all() and (images[0, :, 4:] == 0).all()
    assert mask[0, 4:].all() and not mask[0, :4].any()
    assert mask[1, :, 3:].all() and not mask[1, :, :3].any()
    assert [t["i"] for t in targets] == [0, 1]


def _copy_root(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_bad_annotations_name_file_and_entry(hico_root, tmp_path):
    root = _copy_root(hico_root, tmp_path / "r")
    test_file = root / "annotations" / "test_hico.json"
    entries = json.loads(test_file.read_text())
    cfg = DatasetConfig(format="hico", root=str(root))

    test_file.write_text(json.dumps(entries)[:-20])
    with pytest.raises(HqmError, match="test_hico.json: malformed JSON"):
        build_dataset(cfg, "test", SMALL)

    bad = json.loads(json.dumps(entries))
    bad[2]["hoi_annotation"][0]["object_id"] = 99
    test_file.write_text(json.dumps(bad))
    with pytest.raises(HqmError, match=rf"test_hico.json: image '{bad[2]['file_name']}' hoi_annotation\[0\].object_id: 99 .*box index"):
        build_dataset(cfg, "test", SMALL)

    bad = json.loads(json.dumps(entries))
    bad[1]["annotations"][0]["category_id"] = 12  # 12 is not a valid COCO id
    test_file.write_text(json.dumps(bad))
    with pytest.raises(HqmError, match=rf"image '{bad[1]['file_name']}' annotations\[0\].category_id: 12 is not a valid"):
        build_dataset(cfg, "test", SMALL)

    bad = json.loads(json.dumps(entries))
    hoi = bad[0]["hoi_annotation"][0]
    hoi["category_id"] = 45  # kick
    bad[0]["annotations"][hoi["object_id"]]["category_id"] = 19  # horse: "kick horse" is not a category
    assert classes.hico_validity_matrix()[44, 17] == 0
    test_file.write_text(json.dumps(bad))
    with pytest.raises(HqmError, match=rf"image '{bad[0]['file_name']}' hoi_annotation\[0\]: .*verb-object table"):
        build_dataset(cfg, "test", SMALL)

    test_file.write_text(json.dumps(entries))
    ds = build_dataset(cfg, "test", SMALL)
    (root / "images" / "test2015" / entries[0]["file_name"]).unlink()
    with pytest.raises(HqmError, match="image file not found"):
        ds[0]


def test_train_images_with_out_of_range_box_index_are_dropped(hico_root, tmp_path):
    root = _copy_root(hico_root, tmp_path / "r")
    train_file = root / "annotations" / "trainval_hico.json"
    entries = json.loads(train_file.read_text())
    entries[0]["hoi_annotation"][0]["subject_id"] = len(entries[0]["annotations"])
    train_file.write_text(json.dumps(entries))
    ds = build_dataset(DatasetConfig(format="hico", root=str(root)), "train", SMALL)
    assert len(ds) == len(entries) - 1 and ds.records[0].file_name == entries[1]["file_name"]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 23), st.booleans())
def test_targets_stay_paired_with_their_boxes_under_flip(hico_root, index, flip):
    meta = dataset_meta(DatasetConfig(format="hico", root=str(hico_root)))
    ds = HOIDataset(meta, "train", Compose([RandomHorizontalFlip(1.0 if flip else 0.0)]))
    rec = ds.records[index]
    _, target = ds[index]
    pairs = list(dict.fromkeys((s, o) for s, o, _ in rec.hois.tolist()))
    assert len(target["obj_labels"]) == len(pairs)
    for k, (s, o) in enumerate(pairs):
        assert target["obj_labels"][k] == rec.labels[o]
        for box_index, got in ((s, target["sub_boxes"][k]), (o, target["obj_boxes"][k])):
            x1, y1, x2, y2 = (float(v) for v in rec.boxes[box_index])
            cx = (x1 + x2) / 2 / 96
            expected = torch.tensor([1 - cx if flip else cx, (y1 + y2) / 2 / 96, (x2 - x1) / 96, (y2 - y1) / 96])
            assert torch.allclose(got, expected, atol=1e-5)


def test_unreadable_image_is_an_error_naming_it(hico_root, tmp_path):
    root = _copy_root(hico_root, tmp_path / "r")
    ds = build_dataset(DatasetConfig(format="hico", root=str(root)), "test", SMALL)
    (root / "images" / "test2015" / ds.records[0].file_name).write_bytes(b"not a jpeg")
    with pytest.raises(HqmError, match=r"HICO_test2015_00000001.jpg: unreadable image"):
        ds[0]


@pytest.mark.parametrize("bbox, what", [([1.0, 2.0, float("nan"), 9.0], "not finite"),
                                        ([30, 2, 10, 9], "x2<x1"), ([1, 2, 3], "4 numbers")])  # fmt: skip
def test_training_reader_fails_at_load_on_a_box_evaluation_would_refuse(hico_root, tmp_path, bbox, what):
    root = _copy_root(hico_root, tmp_path / "r")
    train_file = root / "annotations" / "trainval_hico.json"
    entries = json.loads(train_file.read_text())
    entries[3]["annotations"][1]["bbox"] = bbox
    train_file.write_text(json.dumps(entries))  # json writes NaN, as numpy-made files do
    name = entries[3]["file_name"]
    with pytest.raises(HqmError, match=rf"trainval_hico.json: image '{name}' annotations\[1\].bbox: .*") as err:
        build_dataset(DatasetConfig(format="hico", root=str(root)), "train", SMALL)
    assert what in str(err.value) or (what == "x2<x1" and "invalid box" in str(err.value))
    with pytest.raises(HqmError, match=rf"image '{name}' annotations\[1\].bbox"):
        read_hico_annotations(train_file)  # the evaluation reader: the same rule, the same message


def test_training_and_evaluation_read_the_same_annotations(hico_root, vcoco_root):
    for fmt, root, reader in (("hico", hico_root, read_hico_annotations), ("vcoco", vcoco_root, read_vcoco_annotations)):
        meta = dataset_meta(DatasetConfig(format=fmt, root=str(root)))
        for split in ("train", "test"):
            records = HOIDataset(meta, split, Compose([])).records
            expected = reader(meta.annotations(split))
            assert [r.file_name for r in records] == [e.file_name for e in expected]
            for r, e in zip(records, expected, strict=True):
                assert np.array_equal(r.boxes, e.boxes) and np.array_equal(r.hois, e.hois)


def test_truncated_and_oversized_images_are_one_line_errors(hico_root, tmp_path, monkeypatch):
    root = _copy_root(hico_root, tmp_path / "r")
    ds = build_dataset(DatasetConfig(format="hico", root=str(root)), "test", SMALL)
    path = root / "images" / "test2015" / ds.records[0].file_name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HqmError, match=rf"{path.name}: unreadable image \(listed in test_hico.json\): OSError") as err:
        ds[0]
    assert "\n" not in str(err.value)
    path.write_bytes(data)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 96 // 4)  # 96x96 is now > 2x the limit: an error
    with pytest.raises(HqmError, match=rf"{path.name}: image refused as a decompression bomb"):
        ds[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 96 // 2 + 1)  # between 1x and 2x: PIL only warns
    with pytest.raises(HqmError, match="decompression bomb"):
        ds[0]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 96)
    assert ds[0][0].shape == (3, 96, 96)


def test_check_dataset_counts_what_training_reads(hico_root, vcoco_root, capsys):
    for fmt, root in (("hico", hico_root), ("vcoco", vcoco_root)):
        assert main(["check-dataset", "--format", fmt, "--root", str(root)]) == 0
        printed = json.loads(capsys.readouterr().out)
        meta = dataset_meta(DatasetConfig(format=fmt, root=str(root)))
        for split in ("train", "test"):
            records = HOIDataset(meta, split, Compose([])).records
            assert printed[split] == {"images": len(records), "hois": sum(len(r.hois) for r in records)}
            assert printed[split]["images"] > 0


def test_a_missing_image_stops_the_dataset_at_build_time(hico_root, tmp_path, capsys):
    root = _copy_root(hico_root, tmp_path / "r")
    entries = json.loads((root / "annotations" / "trainval_hico.json").read_text())
    (root / "images" / "train2015" / entries[5]["file_name"]).unlink()
    with pytest.raises(HqmError, match=rf"{entries[5]['file_name']}: image file not found \(listed in trainval_hico.json\)"):
        build_dataset(DatasetConfig(format="hico", root=str(root)), "train", SMALL)
    assert main(["check-dataset", "--format", "hico", "--root", str(root), "--no-images"]) == 2
    assert "image file not found" in capsys.readouterr().err


def _same_item(a, b):
    assert torch.equal(a[0], b[0]) and a[1].keys() == b[1].keys()
    for key, value in a[1].items():
        assert torch.equal(value, b[1][key]) if torch.is_tensor(value) else value == b[1][key]


def test_policy_none_trains_on_the_test_transform(hico_root):
    ds_cfg = DatasetConfig(format="hico", root=str(hico_root))
    none = dataclasses.replace(SMALL, policy="none")
    train = build_dataset(ds_cfg, "train", none)
    as_test = HOIDataset(train.meta, "train", build_dataset(ds_cfg, "test", SMALL).transform)
    for index in range(len(train)):
        torch.manual_seed(index)  # any random state: the policy draws nothing
        _same_item(train[index], as_test[index])
    qpic, qpic_shapes = build_dataset(ds_cfg, "train", SMALL), set()
    for seed in range(12):
        torch.manual_seed(seed)
        qpic_shapes.add(tuple(qpic[0][0].shape))
    assert len(qpic_shapes) > 1  # the qpic policy does draw scales


def test_sample_cache_serves_deterministic_splits_from_memory(hico_root, tmp_path):
    root = tmp_path / "hico"
    _copy_root(hico_root, root)
    ds_cfg = DatasetConfig(format="hico", root=str(root))
    none = dataclasses.replace(SMALL, policy="none")
    assert build_dataset(ds_cfg, "train", SMALL, cache=True).cache is None  # random augmentation: never cached
    cached = {split: build_dataset(ds_cfg, split, none, cache=True) for split in ("train", "test")}
    plain = {split: build_dataset(ds_cfg, split, none) for split in ("train", "test")}
    first = {split: [ds[i] for i in range(len(ds))] for split, ds in cached.items()}
    for split, ds in cached.items():
        for i, item in enumerate(first[split]):
            _same_item(item, plain[split][i])
        item = ds[0]
        item[1]["added_by_a_caller"] = 1
        assert "added_by_a_caller" not in ds[0][1]
    shutil.rmtree(root / "images")  # a cached dataset no longer reads its files
    for split, ds in cached.items():
        for i in range(len(ds)):
            _same_item(ds[i], first[split][i])
    with pytest.raises(HqmError, match="image file not found"):
        plain["train"][0]
