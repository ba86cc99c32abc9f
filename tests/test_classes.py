"""The one source of class lists agrees with the spec files and the fixtures."""

from pathlib import Path

import numpy as np

from hqm.data import classes

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_hico_lists():
    cats = classes.hico_hoi_categories()
    assert len(cats) == 600
    assert len(classes.hico_verb_names()) == 117 and classes.hico_verb_names()[57] == "no_interaction"
    assert classes.coco_object_names()[0] == "person" and len(classes.coco_object_names()) == 80
    corre = classes.hico_validity_matrix()
    assert corre.shape == (117, 80) and corre.sum() == 600
    # no_interaction pairs with every object
    assert corre[57].all()
    for c in cats:
        assert classes.VALID_COCO_IDS[c.object_index] == c.object_coco_id
        assert classes.coco_id_to_index(c.object_coco_id) == c.object_index


def test_hico_validity_matrix_equals_fixture():
    fixture = np.load(FIXTURES / "hico_eval/annotations/corre_hico.npy")
    np.testing.assert_array_equal(fixture, classes.hico_validity_matrix())


def test_vcoco_lists():
    assert len(classes.VCOCO_ACTIONS) == 26 and len(classes.VCOCO_VERB_CLASSES) == 29
    assert classes.VCOCO_VERB_CLASSES[:3] == ("hold_obj", "stand", "sit_instr")
    assert classes.VCOCO_VERB_CLASSES[26] == "point_instr" and classes.VCOCO_VERB_CLASSES[28] == "snowboard_instr"
    assert classes.VCOCO_ROLE_PAIRS[4:6] == (("hit", "instr"), ("hit", "obj"))
    assert classes.VCOCO_ROLE_PAIRS[6:8] == (("eat", "obj"), ("eat", "instr"))
    assert 26 not in classes.VCOCO_THESIS_CLASSES and 1 not in classes.VCOCO_THESIS_CLASSES
