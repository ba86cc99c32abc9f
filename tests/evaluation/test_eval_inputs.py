"""Prediction files (read / write / validate) and annotation readers: errors name file, image, field."""

import gzip
import json

import numpy as np
import pytest

from hqm.data.annotations import (
    known_objects_from_gt,
    read_correct_mat,
    read_hico_annotations,
    read_known_objects,
)
from hqm.errors import HqmError
from hqm.evaluation.predictions import (
    ImagePrediction,
    read_predictions,
    validate_predictions,
    write_predictions,
)


def qpic_image(name="a.jpg", n=2, verbs=3):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + 10], 1)
    return ImagePrediction(name, boxes, boxes + 1, np.arange(n), rng.uniform(0, 1, (n, verbs)).astype(np.float32))


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_round_trip_both_layouts(tmp_path, suffix):
    qpic = [qpic_image("a.jpg"), qpic_image("b.jpg", n=0)]
    write_predictions(tmp_path / f"q{suffix}", qpic)
    back = read_predictions(tmp_path / f"q{suffix}", 3)
    assert [p.file_name for p in back] == ["a.jpg", "b.jpg"] and len(back[1]) == 0
    np.testing.assert_array_equal(back[0].verb_scores, qpic[0].verb_scores)
    np.testing.assert_array_equal(back[0].obj_boxes, qpic[0].obj_boxes)
    trip = ImagePrediction("a.jpg", qpic[0].sub_boxes, qpic[0].obj_boxes, np.int64([4, 5]),
                           np.float32([0.25, 0.5]), np.int64([1, 2]))
    write_predictions(tmp_path / f"t{suffix}", [trip])
    (t,) = read_predictions(tmp_path / f"t{suffix}", 3)
    assert t.verbs.tolist() == [1, 2] and t.obj_labels.tolist() == [4, 5] and t.verb_scores.tolist() == [0.25, 0.5]


def test_qpic_layout_expands_query_major_verb_minor(hico_dir):
    with gzip.open(hico_dir / "predictions_qpic_layout.json.gz", "rt") as handle:
        raw = json.load(handle)["images"][0]
    (pred,) = [p for p in read_predictions(hico_dir / "predictions_qpic_layout.json.gz", 117)
               if p.file_name == raw["file_name"]]
    rows, verbs, scores = pred.candidates()
    assert rows[:3].tolist() == [0, 0, 0] and verbs[:3].tolist() == [0, 1, 2]
    assert scores[118] == np.float32(raw["verb_scores"][1][1])
    assert pred.obj_labels[1] == raw["labels"][raw["obj_ids"][1]]


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.verb_scores.__setitem__((1, 2), np.nan), r"'a.jpg'.*row 1.*NaN"),
    (lambda p: p.verb_scores.__setitem__((0, 0), np.inf), r"'a.jpg'.*row 0.*infinite"),
    (lambda p: p.obj_boxes.__setitem__((1, 2), -100), r"'a.jpg'.*obj_boxes\[1\].*x2<x1"),
    (lambda p: p.obj_labels.__setitem__(0, 80), r"'a.jpg'.*obj_labels\[0\] = 80"),
])  # fmt: skip
def test_validation_names_image_and_field(mutate, message):
    pred = qpic_image()
    mutate(pred)
    with pytest.raises(HqmError, match=message):
        validate_predictions([pred], "preds.json", {"a.jpg"}, 80, 3)


def test_validation_unknown_image_and_verb_index():
    with pytest.raises(HqmError, match=r"'x.jpg': not an image"):
        validate_predictions([qpic_image("x.jpg")], "p", {"a.jpg"}, 80, 3)
    trip = ImagePrediction("a.jpg", np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32), np.int64([0]),
                           np.float32([0.5]), np.int64([117]))
    with pytest.raises(HqmError, match=r"'a.jpg'.*verb\[0\] = 117"):
        validate_predictions([trip], "p", None, 80, 117)


def test_bad_prediction_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format": "triplets", "images": [{"file_name": "a.jpg", "triplets": [{"sub_box": [0, 0, 1, 1]}]}]}))
    with pytest.raises(HqmError, match=r"p.json: images\[0\].triplets\[0\]: .*missing obj_box.*\(image 'a.jpg'\)"):
        read_predictions(path, 117)
    path.write_text(json.dumps({"format": "other", "images": []}))
    with pytest.raises(HqmError, match="format 'other'"):
        read_predictions(path, 117)


def test_annotation_errors_name_file_and_entry(tmp_path):
    entry = {"file_name": "a.jpg", "annotations": [{"bbox": [0, 0, 5, 5], "category_id": 1},
                                                   {"bbox": [1, 1, 4, 4], "category_id": 12}],
             "hoi_annotation": [{"subject_id": 0, "object_id": 1, "category_id": 37}]}  # fmt: skip
    path = tmp_path / "test_hico.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(HqmError, match=r"test_hico.json: image 'a.jpg' annotations\[1\].category_id: 12"):
        read_hico_annotations(path)
    entry["annotations"][1]["category_id"] = 13
    entry["hoi_annotation"][0]["object_id"] = 2
    path.write_text(json.dumps([entry]))
    with pytest.raises(HqmError, match=r"'a.jpg' hoi_annotation\[0\].object_id: 2 is outside"):
        read_hico_annotations(path)
    entry["hoi_annotation"][0]["object_id"] = 1
    path.write_text(json.dumps([entry]))
    (img,) = read_hico_annotations(path)
    assert img.labels.tolist() == [0, 11] and img.hois.tolist() == [[0, 1, 36]]
    assert known_objects_from_gt([img])["a.jpg"].tolist() == [11]


def test_known_objects_and_correct_mat_files(tmp_path):
    path = tmp_path / "ko.json"
    path.write_text(json.dumps({"format": "hico_known_objects", "images": {"a.jpg": [3, 1, 3]}}))
    assert read_known_objects(path)["a.jpg"].tolist() == [1, 3]
    path.write_text(json.dumps({"format": "hico_known_objects", "images": {"a.jpg": [80]}}))
    with pytest.raises(HqmError, match="'a.jpg'"):
        read_known_objects(path)
    np.save(tmp_path / "c.npy", np.ones((3, 80)))
    with pytest.raises(HqmError, match=r"c.npy: shape \(3, 80\)"):
        read_correct_mat(tmp_path / "c.npy", 117)


def _triplet(**over):
    t = {"sub_box": [0, 0, 10, 10], "obj_box": [5, 5, 20, 20], "obj_label": 1, "verb": 2, "score": 0.5}
    return {**t, **over}


@pytest.mark.parametrize("bad, message", [
    (_triplet(score="x"), r"images\[1\].triplets\[2\].score: expected a number, got 'x' \(image 'b.jpg'\)"),
    (_triplet(score=None), r"images\[1\].triplets\[2\].score: expected a number, got None"),
    (_triplet(score=True), r"images\[1\].triplets\[2\].score: expected a number, got True"),
    (_triplet(sub_box=[0, 0, "a", 3]), r"images\[1\].triplets\[2\].sub_box\[2\]: expected a number, got 'a'"),
    (_triplet(obj_box=[0, 0, 3]), r"images\[1\].triplets\[2\].obj_box: expected a list of 4, got \[0, 0, 3\]"),
    (_triplet(obj_box=[0, 0, None, 3]), r"images\[1\].triplets\[2\].obj_box\[2\]: expected a number, got None"),
    (_triplet(verb="3"), r"images\[1\].triplets\[2\].verb: expected an integer, got '3'"),
    (_triplet(verb=10**30), r"images\[1\].triplets\[2\].verb: expected an integer, got 1000000"),
    (_triplet(obj_label=1.0), r"images\[1\].triplets\[2\].obj_label: expected an integer, got 1.0"),
])  # fmt: skip
def test_triplet_entries_are_named_by_index(tmp_path, bad, message):
    images = [{"file_name": "a.jpg", "triplets": [_triplet()]},
              {"file_name": "b.jpg", "triplets": [_triplet(), _triplet(), bad]}]
    path = tmp_path / "preds.json"
    path.write_text(json.dumps({"format": "triplets", "images": images}))
    with pytest.raises(HqmError, match=r"preds.json: " + message):
        read_predictions(path, 117)


@pytest.mark.parametrize("field, value, message", [
    ("verb_scores", [[0.1, "x", 0.3], [0.1, 0.2, 0.3]], r"verb_scores\[0\]\[1\]: expected a number, got 'x'"),
    ("verb_scores", [[0.1, 0.2], [0.1, 0.2, 0.3]], r"verb_scores\[0\]: expected a list of 3, got \[0.1, 0.2\]"),
    ("verb_scores", 5, r"verb_scores: expected a list, got 5"),
    ("boxes", [[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 5, 5], [1, 1, "b", 9]], r"boxes\[3\]\[2\]: expected a number"),
    ("labels", [0, 0, "car", 3], r"labels\[2\]: expected a number, got 'car'"),
    ("labels", [0, 0, 2.5, 3], r"labels\[2\]: expected an integer, got 2.5"),
    ("sub_ids", [0, "1"], r"sub_ids\[1\]: expected a number, got '1'"),
    ("obj_ids", [2, 7], r"obj_ids\[1\]: 7 is outside 0..3"),
])  # fmt: skip
def test_qpic_entries_are_named_by_index(tmp_path, field, value, message):
    entry = {"file_name": "a.jpg", "boxes": [[0, 0, 5, 5]] * 4, "labels": [0, 0, 2, 3],
             "verb_scores": [[0.1, 0.2, 0.3]] * 2, "sub_ids": [0, 1], "obj_ids": [2, 3], field: value}
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"format": "qpic_postprocess", "images": [entry]}))
    with pytest.raises(HqmError, match=r"q.json: images\[0\]." + message):
        read_predictions(path, 3)
