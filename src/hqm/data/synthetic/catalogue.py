"""What the synthetic generator can draw and how each pose is labelled in HICO-DET and V-COCO."""

from __future__ import annotations

import numpy as np

from hqm.data import classes

OBJECTS = ("sports_ball", "umbrella", "kite", "bicycle", "horse")
POSE_OBJECTS = {
    "hold": ("sports_ball", "umbrella", "kite"),
    "carry": ("sports_ball", "umbrella", "kite", "bicycle"),
    "kick": ("sports_ball",),
    "ride": ("bicycle", "horse"),
}
POSE_HICO_VERBS = {"hold": ("hold",), "carry": ("carry", "hold"), "kick": ("kick",), "ride": ("ride", "sit_on")}
# V-COCO (action, role) per interaction pose; agent-only poses below.
POSE_VCOCO_ROLES = {
    "hold": (("hold", "obj"),),
    "carry": (("carry", "obj"), ("hold", "obj")),
    "kick": (("kick", "obj"),),
    "ride": (("ride", "instr"), ("sit", "instr")),
}
IDLE_POSES = ("stand", "run")  # people without an object; V-COCO labels them stand / run
RARE_COMBINATIONS = (("carry", "bicycle"), ("carry", "kite"))


def hico_verbs_for(pose: str, obj: str) -> list[int]:
    """Verb indices (0..116) of a pose on an object, restricted to real HICO-DET categories."""
    lookup = classes.hico_hoi_id_lookup()
    obj_index = classes.coco_object_names().index(obj)
    verbs = [classes.hico_verb_names().index(v) for v in POSE_HICO_VERBS[pose]]
    return [v for v in verbs if (obj_index, v) in lookup]


def hico_correct_mat() -> np.ndarray:
    """``corre_hico.npy`` of a synthetic root: float64 [117, 80], 1 only for the categories drawn.

    With ``evaluation.category_scope: dataset`` the evaluator averages over these categories only
    (docs/contracts: evaluation scope on synthetic data); they are all real HICO-DET categories.
    """
    corre = np.zeros((classes.NUM_HICO_VERBS, classes.NUM_OBJECT_CLASSES), dtype=np.float64)
    for pose, objects in POSE_OBJECTS.items():
        for obj in objects:
            for verb in hico_verbs_for(pose, obj):
                corre[verb, classes.coco_object_names().index(obj)] = 1.0
    return corre
