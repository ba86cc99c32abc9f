"""Every class list of the project, in one place.

HICO-DET lists are read from ``resources/hico_hoi_list.tsv`` (the 600 HOI categories with their
object and verb ids); V-COCO lists follow the official action order of ``s-gupta/v-coco``.
Nothing else in the project spells out a class list.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

# COCO category ids of the 80 valid classes; object index i <-> COCO id VALID_COCO_IDS[i].
VALID_COCO_IDS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90,
)  # fmt: skip
NUM_OBJECT_CLASSES = 80
DETR_NO_OBJECT_ROW = 91  # DETR's class_embed has 92 rows: COCO ids 0..90, then no-object


@dataclass(frozen=True)
class HoiCategory:
    hoi_id: int  # 1..600
    object_coco_id: int
    object_index: int  # 0..79
    object_name: str
    verb_id: int  # 1..117
    verb_index: int  # 0..116
    verb_name: str


@functools.cache
def hico_hoi_categories() -> tuple[HoiCategory, ...]:
    """The 600 HICO-DET HOI categories in HOI-id order."""
    text = resources.files("hqm.resources").joinpath("hico_hoi_list.tsv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    cats = tuple(
        HoiCategory(
            int(r["hoi_id"]), int(r["object_coco_id"]), int(r["object_index"]), r["object_name"],
            int(r["verb_id"]), int(r["verb_index"]), r["verb_name"],
        )
        for r in rows
    )  # fmt: skip
    assert [c.hoi_id for c in cats] == list(range(1, 601)), "hico_hoi_list.tsv is corrupt"
    return cats


@functools.cache
def coco_object_names() -> tuple[str, ...]:
    """The 80 COCO object names in object-index order (person = 0)."""
    names = {c.object_index: c.object_name for c in hico_hoi_categories()}
    return tuple(names[i] for i in range(NUM_OBJECT_CLASSES))


@functools.cache
def hico_verb_names() -> tuple[str, ...]:
    """The 117 HICO-DET verbs in verb-index order (verb id - 1)."""
    names = {c.verb_index: c.verb_name for c in hico_hoi_categories()}
    return tuple(names[i] for i in range(len(names)))


NUM_HICO_VERBS = 117


def hico_validity_matrix() -> np.ndarray:
    """``corre[verb_index, object_index]`` = 1 for the 600 categories, float64 ``[117, 80]``."""
    corre = np.zeros((NUM_HICO_VERBS, NUM_OBJECT_CLASSES), dtype=np.float64)
    for c in hico_hoi_categories():
        corre[c.verb_index, c.object_index] = 1.0
    return corre


@functools.cache
def hico_hoi_id_lookup() -> dict[tuple[int, int], int]:
    """(object_index, verb_index) -> HOI id 1..600."""
    return {(c.object_index, c.verb_index): c.hoi_id for c in hico_hoi_categories()}


def coco_id_to_index(coco_id: int) -> int:
    """Object index 0..79 of a valid COCO category id (KeyError-free: raises ValueError)."""
    try:
        return _COCO_ID_TO_INDEX[coco_id]
    except KeyError:
        raise ValueError(f"{coco_id} is not one of the 80 valid COCO category ids") from None


_COCO_ID_TO_INDEX = {cid: i for i, cid in enumerate(VALID_COCO_IDS)}

# ---------------------------------------------------------------------------------------------
# V-COCO
# ---------------------------------------------------------------------------------------------

# The 26 actions in the official order, with their roles (agent first).
VCOCO_ACTION_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hold", ("agent", "obj")),
    ("stand", ("agent",)),
    ("sit", ("agent", "instr")),
    ("ride", ("agent", "instr")),
    ("walk", ("agent",)),
    ("look", ("agent", "obj")),
    ("hit", ("agent", "instr", "obj")),
    ("eat", ("agent", "obj", "instr")),
    ("jump", ("agent", "instr")),
    ("lay", ("agent", "instr")),
    ("talk_on_phone", ("agent", "instr")),
    ("carry", ("agent", "obj")),
    ("throw", ("agent", "obj")),
    ("catch", ("agent", "obj")),
    ("cut", ("agent", "instr", "obj")),
    ("run", ("agent",)),
    ("work_on_computer", ("agent", "instr")),
    ("ski", ("agent", "instr")),
    ("surf", ("agent", "instr")),
    ("skateboard", ("agent", "instr")),
    ("smile", ("agent",)),
    ("drink", ("agent", "instr")),
    ("kick", ("agent", "obj")),
    ("point", ("agent", "instr")),
    ("read", ("agent", "obj")),
    ("snowboard", ("agent", "instr")),
)
VCOCO_ACTIONS: tuple[str, ...] = tuple(a for a, _ in VCOCO_ACTION_ROLES)


def _vcoco_verb_classes() -> tuple[str, ...]:
    out: list[str] = []
    for action, roles in VCOCO_ACTION_ROLES:
        if roles == ("agent",):
            out.append(action)
        else:
            out.extend(f"{action}_{role}" for role in roles[1:])
    return tuple(out)


# QPIC's 29 verb classes (index order used by the models).
VCOCO_VERB_CLASSES: tuple[str, ...] = _vcoco_verb_classes()
NUM_VCOCO_VERBS = len(VCOCO_VERB_CLASSES)
# The 25 (action, role) pairs of the official role evaluation, in evaluator order.
VCOCO_ROLE_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (action, role) for action, roles in VCOCO_ACTION_ROLES for role in roles[1:]
)
VCOCO_EXCLUDED_FROM_REPORT = ("point", "instr")  # papers report the mean over the other 24 pairs
VCOCO_AGENT_ONLY: tuple[str, ...] = tuple(a for a, r in VCOCO_ACTION_ROLES if r == ("agent",))
# QPIC's "thesis" subset: the 24 classes other than stand, walk, run, smile, point_instr.
VCOCO_THESIS_CLASSES: tuple[int, ...] = tuple(
    i for i, name in enumerate(VCOCO_VERB_CLASSES)
    if name not in ("stand", "walk", "run", "smile", "point_instr")
)  # fmt: skip
# VSGNet's alphabetical column order of prior.pickle.
VCOCO_PRIOR_COLUMN_ORDER: tuple[str, ...] = tuple(sorted(VCOCO_VERB_CLASSES))
VCOCO_MISSING_OBJECT = 80  # object label of "no object" (agent-only actions, unannotated roles)
NUM_VCOCO_OBJECT_CLASSES = 81

assert NUM_VCOCO_VERBS == 29 and len(VCOCO_ROLE_PAIRS) == 25 and len(VCOCO_THESIS_CLASSES) == 24
