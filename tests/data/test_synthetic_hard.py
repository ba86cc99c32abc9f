"""Hard cases of the synthetic generator: occlusion, truncation, near-miss contact, the hard test split."""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from hqm.cli import main
from hqm.config import SyntheticConfig
from hqm.data.synthetic import MARKER, make_synthetic
from hqm.data.synthetic.hard import MIN_VISIBLE
from hqm.data.synthetic.scenes import generate_scenes
from hqm.errors import HqmError

BASE = SyntheticConfig(seed=5, num_train=40, num_test=60, image_size=96)
U = BASE.image_size / 128.0


def _only(case: str, **kw) -> SyntheticConfig:
    weights = {f"hard_{c}": float(c == case) for c in ("occlusion", "truncation", "contact")}
    return dataclasses.replace(BASE, **weights, **kw)


def test_hard_fraction_sets_the_share_and_the_weights_pick_the_cases():
    plain = generate_scenes(dataclasses.replace(BASE, num_train=200), "train")
    assert all(sc.hard == "" and not sc.occluders for sc, _ in plain)
    cfg = dataclasses.replace(BASE, num_train=200, hard_fraction=0.5, hard_contact=0.0)
    kinds = Counter(sc.hard for sc, _ in generate_scenes(cfg, "train"))
    assert 70 <= 200 - kinds[""] <= 130
    assert kinds["occlusion"] > 20 and kinds["truncation"] > 20 and kinds["contact"] == 0


def test_near_miss_leaves_a_gap_and_is_not_an_interaction():
    scenes = generate_scenes(_only("contact"), "test", hard_test=True)
    gaps = {True: [], False: []}
    for sc, _ in scenes:
        person, obj = sc.entities[0], sc.entities[1]  # the first group: a holding / kicking person
        assert person.kind == "person" and obj.kind == "object"
        touching = any(it.person == 0 and it.obj == 1 for it in sc.interactions)
        assert 0 not in sc.idle  # a near miss is no "stand": it carries no label at all
        p, o = person.shape.extent, obj.shape.extent
        gaps[touching].append(max(o[0] - p[2], p[0] - o[2]))  # horizontal clearance between the two
    assert len(gaps[True]) >= 15 and len(gaps[False]) >= 15
    assert max(gaps[True]) < 0  # a contact overlaps the hand / foot
    assert min(gaps[False]) >= 3 * U - 1e-6 and max(gaps[False]) <= 6 * U + 1e-6


def test_truncation_cuts_one_group_at_the_border_and_keeps_most_of_each_entity():
    scenes = generate_scenes(_only("truncation"), "test", hard_test=True)
    size = BASE.image_size
    cut = 0
    for sc, _ in scenes:
        crossing = [e for e in sc.entities if e.shape.extent[0] < 0 or e.shape.extent[2] > size]
        cut += bool(crossing)
        for e in sc.entities:
            x1, _, x2, _ = e.shape.extent
            assert 0 <= e.box[0] < e.box[2] <= size
            assert (e.box[2] - e.box[0]) >= MIN_VISIBLE * (x2 - x1) - 1
    assert cut >= 0.8 * len(scenes)


def _hidden_share(extent, block) -> float:
    """The share of ``extent`` a block hides from one side (the smaller of the two axis overlaps)."""
    ex1, ey1, ex2, ey2 = extent
    wx = max(0.0, min(block[2], ex2) - max(block[0], ex1)) / (ex2 - ex1)
    wy = max(0.0, min(block[3], ey2) - max(block[1], ey1)) / (ey2 - ey1)
    return min(wx, wy)


def test_occlusion_draws_a_grey_block_over_part_of_an_interacting_entity():
    scenes = generate_scenes(_only("occlusion"), "test", hard_test=True)
    for sc, jpeg in scenes:
        assert len(sc.occluders) == 1
        (x1, y1, x2, y2), colour = sc.occluders[0]
        pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.int64)
        cx = int(np.clip((x1 + x2) / 2, 0, sc.width - 1))
        cy = int(np.clip((y1 + y2) / 2, 0, sc.height - 1))
        assert np.abs(pixels[cy, cx] - np.asarray(colour)).max() <= 12  # drawn on top of everything
        members = {i for it in sc.interactions for i in (it.person, it.obj)} or set(range(len(sc.entities)))
        block = (x1, y1, x2, y2)
        assert any(0.35 - 1e-6 <= _hidden_share(sc.entities[i].shape.extent, block) <= 0.55 + 1e-6 for i in members)
        for e in sc.entities:  # the annotated box stays the whole drawn extent (amodal)
            assert e.box[0] <= max(0, e.shape.extent[0]) + 1 and e.box[2] >= min(sc.width, e.shape.extent[2]) - 1


def test_hard_test_root_shares_the_training_split_and_only_has_hard_test_scenes(tmp_path, capsys):
    cfg = dataclasses.replace(BASE, num_train=12, num_test=10, hard_fraction=0.25)
    make_synthetic(cfg, "hico", tmp_path / "plain")
    rc = main(["make-synthetic", "--format", "hico", "--out", str(tmp_path / "hard"), "--hard-test",
               *[f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(cfg).items()]])  # fmt: skip
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hard_test"] is True and printed["test"]["hard"] == printed["test"]["images"] == 10
    plain, hard = tmp_path / "plain", tmp_path / "hard"
    for rel in ["annotations/trainval_hico.json", "annotations/corre_hico.npy",
                *[f"images/train2015/{p.name}" for p in (plain / "images/train2015").iterdir()]]:  # fmt: skip
        assert (plain / rel).read_bytes() == (hard / rel).read_bytes(), rel
    assert (plain / "annotations/test_hico.json").read_bytes() != (hard / "annotations/test_hico.json").read_bytes()
    assert json.loads((hard / MARKER).read_text())["hard_test"] is True


@pytest.mark.parametrize("change, message", [
    ({"hard_fraction": 1.5}, "synthetic.hard_fraction: must be within"),
    ({"hard_fraction": float("nan")}, "synthetic.hard_fraction"),
    ({"hard_truncation": -1.0}, "synthetic.hard_truncation: must be a finite weight"),
    ({"hard_fraction": 0.3, "hard_occlusion": 0.0, "hard_truncation": 0.0, "hard_contact": 0.0}, "every"),
])  # fmt: skip
def test_bad_hard_settings_are_refused_without_output(tmp_path, change, message):
    with pytest.raises(HqmError, match=message):
        make_synthetic(dataclasses.replace(BASE, **change), "hico", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
