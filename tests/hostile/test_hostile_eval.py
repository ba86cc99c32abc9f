"""Hostile inputs to ``hqm eval-predictions``: one line naming the file and entry, no output, inputs intact."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from hostile_harness import Case, check_case, parametrize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HICO = FIXTURES / "hico_eval"
VCOCO = FIXTURES / "vcoco_eval"
HICO_ARGS = ("eval-predictions", "{tmp}/p.json", "--root", "{tmp}/hico", "--format", "hico")


def _hico(edit: Callable[[dict], None] | None = None, name: str = "p.json") -> Callable[[Path], None]:
    """A copy of the HICO-DET fixture root and its triplets predictions, edited by ``edit``."""

    def setup(tmp: Path) -> None:
        shutil.copytree(HICO / "annotations", tmp / "hico" / "annotations")
        data = json.loads((HICO / "predictions_triplets.json").read_text())
        if edit is not None:
            edit(data)
        (tmp / name).write_text(json.dumps(data))

    return setup


def _triplet(field: str, value: object) -> Callable[[dict], None]:
    """Set triplets[7].<field> of the first image to ``value``."""
    return lambda data: data["images"][0]["triplets"][7].__setitem__(field, value)


def _qpic_layout_edit(tmp: Path) -> None:
    """The QPIC-layout fixture with a string in images[2].verb_scores[5][40]."""
    shutil.copytree(HICO / "annotations", tmp / "hico" / "annotations")
    with gzip.open(HICO / "predictions_qpic_layout.json.gz", "rt") as handle:
        data = json.load(handle)
    data["images"][2]["verb_scores"][5][40] = "high"
    (tmp / "p.json").write_text(json.dumps(data))


def _truncated_gz(tmp: Path) -> None:
    shutil.copytree(HICO / "annotations", tmp / "hico" / "annotations")
    (tmp / "p.json.gz").write_bytes((HICO / "predictions_qpic_layout.json.gz").read_bytes()[:5000])


def _blocker(tmp: Path) -> None:
    _hico()(tmp)
    (tmp / "blocker").write_text("a file where a folder is needed\n")


def _vcoco(tmp: Path) -> None:
    root = tmp / "vcoco"
    shutil.copytree(VCOCO / "annotations", root / "annotations")
    shutil.copytree(VCOCO / "data", root / "official" / "data")
    shutil.copy(VCOCO / "predictions_qpic.json", tmp / "p.json")


def _vcoco_triplets(tmp: Path) -> None:
    _vcoco(tmp)
    data = {"format": "triplets", "images": [{"file_name": "COCO_val2014_000000200009.jpg", "triplets": [
        {"sub_box": [0, 0, 9, 9], "obj_box": [1, 1, 5, 5], "obj_label": 3, "verb": 2, "score": 0.5}]}]}
    (tmp / "p.json").write_text(json.dumps(data))


TRIPLET_0 = "images[0].triplets[7]"
CASES = [
    Case("out_is_the_predictions_file", _hico(), (*HICO_ARGS, "--out", "{tmp}/p.json"),
         ("--out", "p.json", "would overwrite the input")),
    Case("out_is_a_ground_truth_file", _hico(), (*HICO_ARGS, "--out", "{tmp}/hico/annotations/test_hico.json"),
         ("--out", "test_hico.json", "lies in the input folder", "annotations")),
    Case("out_is_a_directory", _hico(), (*HICO_ARGS, "--out", "{tmp}/hico"), ("--out", "is a directory")),
    Case("max_hois_zero", _hico(), (*HICO_ARGS, "--out", "{tmp}/m.json", "--max-hois", "0"),
         ("--max-hois 0", "at least 1"), outputs=("m.json",)),
    Case("max_hois_negative", _hico(), (*HICO_ARGS, "--out", "{tmp}/m.json", "--max-hois", "-5"),
         ("--max-hois -5",), outputs=("m.json",)),
    Case("score_is_a_string", _hico(_triplet("score", "x")), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         (f"p.json: {TRIPLET_0}.score: expected a number, got 'x'", "HICO_test2015_"), outputs=("m.json",)),
    Case("score_is_null", _hico(_triplet("score", None)), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         (f"p.json: {TRIPLET_0}.score: expected a number, got None",), outputs=("m.json",)),
    Case("score_is_nan", _hico(_triplet("score", float("nan"))), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         ("p.json: image 'HICO_test2015_", "row 7 is NaN"), outputs=("m.json",)),
    Case("box_coordinate_is_a_string", _hico(_triplet("sub_box", [0, 0, "12", 30])),
         (*HICO_ARGS, "--out", "{tmp}/m.json"), (f"p.json: {TRIPLET_0}.sub_box[2]: expected a number, got '12'",),
         outputs=("m.json",)),
    Case("box_has_three_numbers", _hico(_triplet("obj_box", [0, 0, 3])), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         (f"p.json: {TRIPLET_0}.obj_box: expected a list of 4",), outputs=("m.json",)),
    Case("verb_is_a_string", _hico(_triplet("verb", "3")), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         (f"p.json: {TRIPLET_0}.verb: expected an integer, got '3'",), outputs=("m.json",)),
    Case("verb_overflows_int64", _hico(_triplet("verb", 10**30)), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         (f"p.json: {TRIPLET_0}.verb: expected an integer",), outputs=("m.json",)),
    Case("verb_outside_the_class_list", _hico(_triplet("verb", 117)), (*HICO_ARGS, "--out", "{tmp}/m.json"),
         ("p.json: image 'HICO_test2015_", "verb[7] = 117 is outside 0..116"), outputs=("m.json",)),
    Case("triplet_without_score", _hico(lambda d: d["images"][0]["triplets"][7].pop("score")),
         (*HICO_ARGS, "--out", "{tmp}/m.json"), (f"p.json: {TRIPLET_0}: expected an object", "missing score"),
         outputs=("m.json",)),
    Case("image_not_in_the_test_set", _hico(lambda d: d["images"][0].__setitem__("file_name", "HICO_x.jpg")),
         (*HICO_ARGS, "--out", "{tmp}/m.json"), ("p.json: image 'HICO_x.jpg': not an image of the ground truth",),
         outputs=("m.json",)),
    Case("qpic_layout_score_is_a_string", _qpic_layout_edit, (*HICO_ARGS, "--out", "{tmp}/m.json"),
         ("p.json: images[2].verb_scores[5][40]: expected a number, got 'high'",), outputs=("m.json",)),
    Case("truncated_gzip", _truncated_gz,
         ("eval-predictions", "{tmp}/p.json.gz", "--root", "{tmp}/hico", "--format", "hico", "--out", "{tmp}/m.json"),
         ("p.json.gz", "unreadable"), outputs=("m.json",)),
    Case("out_folder_is_a_file", _blocker, (*HICO_ARGS, "--out", "{tmp}/blocker/sub/m.json"),
         ("--out", "blocker is a file, not a folder")),
    Case("pickle_is_the_metrics_file", _vcoco,
         ("eval-predictions", "{tmp}/p.json", "--root", "{tmp}/vcoco", "--format", "vcoco", "--out", "{tmp}/m.json",
          "--official-pickle", "{tmp}/m.json"), ("--official-pickle", "the same file as --out"), outputs=("m.json",)),
    Case("pickle_overwrites_the_predictions", _vcoco,
         ("eval-predictions", "{tmp}/p.json", "--root", "{tmp}/vcoco", "--format", "vcoco", "--out", "{tmp}/m.json",
          "--official-pickle", "{tmp}/p.json"), ("--official-pickle", "would overwrite the input"),
         outputs=("m.json",)),
    Case("vcoco_needs_the_qpic_layout", _vcoco_triplets,
         ("eval-predictions", "{tmp}/p.json", "--root", "{tmp}/vcoco", "--format", "vcoco", "--out", "{tmp}/m.json"),
         ("p.json: image 'COCO_val2014_000000200009.jpg'", "needs the qpic_postprocess layout"),
         outputs=("m.json",)),
]


@parametrize(CASES)
def test_hostile_eval(case: Case, tmp_path: Path) -> None:
    check_case(case, tmp_path)
