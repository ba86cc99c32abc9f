"""The embedded synthetic HOI dataset: procedurally drawn people and objects, no download.

Each image shows 1..``max_people`` stick figures and 1..``max_objects`` objects on a plain
background. A person's pose encodes the verb and the contact with the object makes the pair
visible in the pixels:

=========  ===========================================  ============  =======================
pose       drawing                                      HICO verbs    V-COCO classes
=========  ===========================================  ============  =======================
hold       one arm stretched sideways, object at hand   hold          hold_obj
carry      both arms up, object above the head          carry, hold   carry_obj, hold_obj
kick       one leg stretched sideways, ball at foot     kick          kick_obj
ride       sitting on top of the object                 ride, sit_on  ride_instr, sit_instr
stand      arms down, no object (V-COCO only labelled)  --            stand (agent only)
run        legs and arms wide (V-COCO only labelled)    --            run (agent only)
=========  ===========================================  ============  =======================

HICO verbs are kept only where the (verb, object) pair is one of the 600 real categories, so the
real 117 x 80 validity matrix stays valid. Objects that nobody touches are distractors. A few
(pose, object) combinations are capped at ``rare_max_train`` training images: the rare split.

Output layouts are those of ``docs/architecture.md``; for V-COCO the official layout is written
first and then converted by :mod:`hqm.data.vcoco_convert`. Everything is drawn from one seed with
NumPy's PCG64, so outputs are byte-identical for a given seed and configuration.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hqm.config import SyntheticConfig
from hqm.data import classes
from hqm.errors import HqmError
from hqm.io import atomic_write, make_temp_dir, write_json

# --------------------------------------------------------------------------------------------
# What can be drawn
# --------------------------------------------------------------------------------------------

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

_OBJECT_COLOURS = {
    "sports_ball": (240, 130, 20),
    "umbrella": (210, 30, 40),
    "kite": (30, 170, 60),
    "bicycle": (120, 40, 160),
    "horse": (140, 85, 40),
}
_PERSON_COLOURS = ((20, 20, 90), (25, 25, 25), (10, 70, 110))


def hico_verbs_for(pose: str, obj: str) -> list[int]:
    """Verb indices (0..116) of a pose on an object, restricted to real HICO-DET categories."""
    lookup = classes.hico_hoi_id_lookup()
    obj_index = classes.coco_object_names().index(obj)
    verbs = [classes.hico_verb_names().index(v) for v in POSE_HICO_VERBS[pose]]
    return [v for v in verbs if (obj_index, v) in lookup]


# --------------------------------------------------------------------------------------------
# Drawing primitives that know their extent (so boxes are tight around the drawn parts)
# --------------------------------------------------------------------------------------------


@dataclass
class Shape:
    """A list of PIL drawing operations with their union extent (x1, y1, x2, y2), floats."""

    ops: list[tuple] = field(default_factory=list)
    extent: list[float] = field(default_factory=lambda: [math.inf, math.inf, -math.inf, -math.inf])

    def _grow(self, x1: float, y1: float, x2: float, y2: float) -> None:
        e = self.extent
        e[0], e[1], e[2], e[3] = min(e[0], x1), min(e[1], y1), max(e[2], x2), max(e[3], y2)

    def line(self, p: tuple, q: tuple, width: float, colour: tuple) -> None:
        self.ops.append(("line", (p, q), width, colour))
        h = width / 2
        self._grow(min(p[0], q[0]) - h, min(p[1], q[1]) - h, max(p[0], q[0]) + h, max(p[1], q[1]) + h)

    def ellipse(self, box: tuple, colour: tuple, width: float = 0) -> None:
        """Filled ellipse (width 0) or outline of the given width inside ``box``."""
        self.ops.append(("ellipse", box, width, colour))
        self._grow(*box)

    def polygon(self, points: list[tuple], colour: tuple) -> None:
        self.ops.append(("polygon", points, 0, colour))
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self._grow(min(xs), min(ys), max(xs), max(ys))

    def pieslice(self, box: tuple, colour: tuple) -> None:
        """Upper half of the ellipse in ``box``."""
        self.ops.append(("pieslice", box, 0, colour))
        self._grow(box[0], box[1], box[2], (box[1] + box[3]) / 2)

    def moved(self, dx: float, dy: float) -> Shape:
        def mv(value):
            if isinstance(value, tuple) and len(value) == 2 and not isinstance(value[0], tuple):
                return (value[0] + dx, value[1] + dy)
            if isinstance(value, tuple) and len(value) == 4 and not isinstance(value[0], tuple):
                return (value[0] + dx, value[1] + dy, value[2] + dx, value[3] + dy)
            return type(value)(mv(v) for v in value)

        out = Shape()
        out.ops = [(kind, mv(geom), width, colour) for kind, geom, width, colour in self.ops]
        e = self.extent
        out.extent = [e[0] + dx, e[1] + dy, e[2] + dx, e[3] + dy]
        return out

    def render(self, draw: ImageDraw.ImageDraw) -> None:
        for kind, geom, width, colour in self.ops:
            if kind == "line":
                draw.line([geom[0], geom[1]], fill=colour, width=max(1, round(width)))
            elif kind == "ellipse" and width == 0:
                draw.ellipse(geom, fill=colour)
            elif kind == "ellipse":
                draw.ellipse(geom, outline=colour, width=max(1, round(width)))
            elif kind == "polygon":
                draw.polygon(geom, fill=colour)
            elif kind == "pieslice":
                draw.pieslice(geom, 180, 360, fill=colour)


def draw_object(name: str, width: float, height: float, facing: int) -> Shape:
    """An object whose extent is [-width/2, -height/2, width/2, height/2] (centre at 0, 0)."""
    s, c = Shape(), _OBJECT_COLOURS[name]
    w2, h2 = width / 2, height / 2
    if name == "sports_ball":
        s.ellipse((-w2, -h2, w2, h2), c)
    elif name == "umbrella":
        s.pieslice((-w2, -h2, w2, -h2 + 0.9 * height), c)
        s.line((0, -h2 + 0.4 * height), (0, h2 - 1.5), 3, (60, 60, 60))
        s.line((0, h2 - 1.5), (-0.15 * width, h2 - 1.5), 3, (60, 60, 60))
    elif name == "kite":
        s.polygon([(0, -h2), (w2, -h2 + 0.35 * height), (0, h2 - 0.2 * height), (-w2, -h2 + 0.35 * height)], c)
        s.line((0, h2 - 0.2 * height), (0.2 * width * facing, h2 - 1.5), 3, (230, 200, 0))
    elif name == "bicycle":
        r = 0.5 * height * 0.72
        left, right = (-w2 + r, h2 - r), (w2 - r, h2 - r)
        s.ellipse((left[0] - r, left[1] - r, left[0] + r, left[1] + r), (20, 20, 20), 3)
        s.ellipse((right[0] - r, right[1] - r, right[0] + r, right[1] + r), (20, 20, 20), 3)
        top = -h2 + 1.5
        s.line(left, (0, h2 - r), 3, c)
        s.line((0, h2 - r), right, 3, c)
        s.line(left, (-0.1 * width, top), 3, c)
        s.line((-0.1 * width, top), (0, h2 - r), 3, c)
        s.line((0.3 * width, top), right, 3, c)
    elif name == "horse":
        body_top, body_bottom = -h2 + 0.25 * height, -h2 + 0.65 * height
        s.polygon([(-w2 + 0.15 * width, body_top), (w2 - 0.15 * width, body_top),
                   (w2 - 0.15 * width, body_bottom), (-w2 + 0.15 * width, body_bottom)], c)  # fmt: skip
        head_x = (w2 - 0.15 * width) * facing
        s.polygon([(head_x, body_top), (head_x + 0.15 * width * facing, -h2),
                   (head_x + 0.15 * width * facing, -h2 + 0.3 * height), (head_x, body_bottom)], c)  # fmt: skip
        for fx in (-0.3, -0.18, 0.18, 0.3):
            s.line((fx * width, body_bottom), (fx * width, h2 - 1.5), 3, c)
    else:  # pragma: no cover - OBJECTS is closed
        raise ValueError(name)
    s.extent = [-w2, -h2, w2, h2]
    return s


@dataclass
class Figure:
    """A stick figure drawn relative to its feet (0, 0) plus where its hands / hip / foot are."""

    shape: Shape
    hand: tuple[float, float] = (0.0, 0.0)
    foot: tuple[float, float] = (0.0, 0.0)


def draw_person(pose: str, height: float, facing: int, colour: tuple) -> Figure:
    """Stick figure standing on (0, 0); ``facing`` (+1 right, -1 left) is the object's side."""
    s = Shape()
    lw = max(2.0, height / 20)
    r = 0.09 * height
    head_y = -height + r
    neck_y, hip_y = -height + 2 * r, -0.45 * height
    shoulder = (0.0, neck_y + 0.05 * height)
    hip = (0.0, hip_y)
    s.ellipse((-r, head_y - r, r, head_y + r), colour)
    s.line((0, neck_y), hip, lw, colour)
    fig = Figure(s)
    arm_down = 0.3 * height
    legs = [(-0.12 * height, 0.0), (0.12 * height, 0.0)]
    arms = [(-0.16 * height, shoulder[1] + arm_down), (0.16 * height, shoulder[1] + arm_down)]
    if pose == "hold":
        arms = [(facing * 0.34 * height, shoulder[1]), (-facing * 0.14 * height, shoulder[1] + arm_down)]
        fig.hand = arms[0]
    elif pose == "carry":
        arms = [(-0.1 * height, shoulder[1] - 0.32 * height), (0.1 * height, shoulder[1] - 0.32 * height)]
        fig.hand = (0.0, shoulder[1] - 0.32 * height)
    elif pose == "kick":
        legs = [(facing * 0.36 * height, -0.16 * height), (-facing * 0.06 * height, 0.0)]
        fig.foot = legs[0]
    elif pose == "ride":
        knee = (facing * 0.2 * height, hip_y)
        s.line(hip, knee, lw, colour)
        s.line(knee, (knee[0], hip_y + 0.22 * height), lw, colour)
        legs = []
        arms = [(facing * 0.3 * height, shoulder[1] + 0.15 * height)] * 2
    elif pose == "run":
        legs = [(-0.3 * height, 0.0), (0.3 * height, -0.05 * height)]
        arms = [(-0.25 * height, shoulder[1] - 0.12 * height), (0.25 * height, shoulder[1] + 0.2 * height)]
    for foot in legs:
        s.line(hip, foot, lw, colour)
    for hand in arms:
        s.line(shoulder, hand, lw, colour)
    return fig


# --------------------------------------------------------------------------------------------
# Scene layout
# --------------------------------------------------------------------------------------------


@dataclass
class Entity:
    kind: str  # "person" | "object"
    name: str  # object name ("person" for people)
    shape: Shape
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # continuous pixel box [x1, x2) x [y1, y2)


@dataclass
class Interaction:
    person: int  # entity index
    obj: int
    pose: str


@dataclass
class Scene:
    file_name: str
    image_id: int
    width: int
    height: int
    entities: list[Entity]
    interactions: list[Interaction]
    idle: dict[int, str]  # person entity index -> "stand" | "run"


def _group(rng: np.random.Generator, u: float, pose: str, obj: str | None) -> list[Entity]:
    """One person (and its object) laid out around the person's feet at (0, 0)."""
    facing = int(rng.choice((-1, 1)))
    colour = _PERSON_COLOURS[int(rng.integers(len(_PERSON_COLOURS)))]
    height = float(rng.uniform(50, 60)) * u
    if obj is None:
        return [Entity("person", "person", draw_person(pose, height, facing, colour).shape)]
    ow, oh = _object_size(rng, obj, u)
    if pose == "ride":
        ride_h = height * 0.8  # a seated person is shorter
        fig = draw_person("ride", ride_h, facing, colour)
        thing = draw_object(obj, ow, oh, facing).moved(0, -oh / 2)  # object stands on the ground
        person = fig.shape.moved(-facing * 0.05 * ow, -oh + 0.45 * ride_h + 0.2 * oh)
        return [Entity("person", "person", person), Entity("object", obj, thing)]
    fig = draw_person(pose, height, facing, colour)
    thing = draw_object(obj, ow, oh, facing)
    if pose == "hold":
        hx, hy = fig.hand
        thing = thing.moved(hx + facing * (ow / 2 - 1), hy)
    elif pose == "carry":
        hx, hy = fig.hand
        thing = thing.moved(hx, hy - oh / 2 + 1)
    elif pose == "kick":
        fx, fy = fig.foot
        thing = thing.moved(fx + facing * (ow / 2 - 1), fy)
    return [Entity("person", "person", fig.shape), Entity("object", obj, thing)]


def _object_size(rng: np.random.Generator, obj: str, u: float) -> tuple[float, float]:
    if obj == "sports_ball":
        d = float(rng.uniform(16, 22)) * u
        return d, d
    ranges = {"umbrella": ((28, 34), (22, 28)), "kite": ((20, 26), (26, 32)),
              "bicycle": ((40, 48), (24, 28)), "horse": ((44, 52), (30, 36))}  # fmt: skip
    (w0, w1), (h0, h1) = ranges[obj]
    return float(rng.uniform(w0, w1)) * u, float(rng.uniform(h0, h1)) * u


def _place(rng, groups: list[list[Entity]], size: int, margin: float, slots: int = 0) -> list[tuple[int, list[Entity]]]:
    """Non-overlapping positions; groups that do not fit after 60 random tries are dropped.

    With ``slots`` > 0 the first ``slots`` groups (the people) are first tried side by side, each
    centred in its column of the image and standing near the bottom (slightly jittered): regular
    positions make the boxes much easier to learn for a tiny detector. Returns (group index,
    moved group) for the groups that were placed, in input order.
    """
    placed: list[tuple[int, list[Entity]]] = []
    taken: list[tuple[float, float, float, float]] = []
    for gi, group in enumerate(groups):
        x1 = min(e.shape.extent[0] for e in group)
        y1 = min(e.shape.extent[1] for e in group)
        x2 = max(e.shape.extent[2] for e in group)
        y2 = max(e.shape.extent[3] for e in group)
        w, h = x2 - x1, y2 - y1
        if w + 2 * margin > size or h + 2 * margin > size:
            continue
        tries = []
        if gi < slots:
            centre = (gi + 0.5) * size / slots + float(rng.uniform(-size / 32, size / 32))
            bottom = size - margin - float(rng.uniform(0, size / 16))
            tries.append((min(max(centre - w / 2, margin), size - margin - w), bottom - h))
        tries += [(float(rng.uniform(margin, size - margin - w)), float(rng.uniform(margin, size - margin - h)))
                  for _ in range(60)]  # fmt: skip
        for nx, ny in tries:
            cand = (nx - 2, ny - 2, nx + w + 2, ny + h + 2)
            if all(cand[2] <= t[0] or t[2] <= cand[0] or cand[3] <= t[1] or t[3] <= cand[1] for t in taken):
                taken.append(cand)
                moved = []
                for e in group:
                    shape = e.shape.moved(nx - x1, ny - y1)
                    moved.append(Entity(e.kind, e.name, shape))
                placed.append((gi, moved))
                break
    return placed


def _sample_scene(rng, cfg: SyntheticConfig, split: str, rare_counts: dict) -> Scene:
    size = cfg.image_size
    u = size / 128.0
    n_people = int(rng.integers(1, cfg.max_people + 1))
    n_objects = int(rng.integers(1, cfg.max_objects + 1))
    groups: list[list[Entity]] = []
    poses: list[str] = []
    used_rare: list[tuple[str, str]] = []
    for p in range(n_people):
        interacting = p < n_objects and (p == 0 or rng.random() < 0.75)
        if interacting:
            pose = str(rng.choice(list(POSE_OBJECTS)))
            options = list(POSE_OBJECTS[pose])
            obj = str(rng.choice(options))
            if split == "train" and (pose, obj) in RARE_COMBINATIONS:
                if rare_counts.get((pose, obj), 0) >= cfg.rare_max_train:
                    obj = str(rng.choice([o for o in options if (pose, o) not in RARE_COMBINATIONS]))
                else:
                    used_rare.append((pose, obj))
            groups.append(_group(rng, u, pose, obj))
        else:
            pose = str(rng.choice(IDLE_POSES))
            groups.append(_group(rng, u, pose, None))
        poses.append(pose)
    n_interacting = sum(len(g) == 2 for g in groups)
    for _ in range(n_objects - n_interacting):
        obj = str(rng.choice(OBJECTS))
        ow, oh = _object_size(rng, obj, u)
        groups.append([Entity("object", obj, draw_object(obj, ow, oh, int(rng.choice((-1, 1)))))])
        poses.append("")
    slots = n_people if cfg.layout == "slots" else 0
    placed = _place(rng, groups, size, margin=2 * u, slots=slots)
    entities: list[Entity] = []
    interactions: list[Interaction] = []
    idle: dict[int, str] = {}
    for gi, group in placed:
        pose = poses[gi]
        base = len(entities)
        entities.extend(group)
        if len(group) == 2:
            interactions.append(Interaction(base, base + 1, pose))
            if split == "train" and (pose, group[1].name) in used_rare:
                rare_counts[(pose, group[1].name)] = rare_counts.get((pose, group[1].name), 0) + 1
        elif group[0].kind == "person":
            idle[base] = pose
    for e in entities:
        x1, y1, x2, y2 = e.shape.extent
        e.box = (max(0, math.floor(x1)), max(0, math.floor(y1)), min(size, math.ceil(x2)), min(size, math.ceil(y2)))
    return Scene("", 0, size, size, entities, interactions, idle)


def _render(scene: Scene, rng: np.random.Generator) -> bytes:
    tint = tuple(int(v) for v in rng.integers(225, 256, size=3))
    image = Image.new("RGB", (scene.width, scene.height), tint)
    draw = ImageDraw.Draw(image)
    for e in scene.entities:
        e.shape.render(draw)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def generate_scenes(cfg: SyntheticConfig, split: str) -> list[tuple[Scene, bytes]]:
    """All scenes of a split with their JPEG bytes (deterministic in ``cfg.seed``)."""
    split_key = {"train": 0, "test": 1}[split]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, split_key])))
    count = cfg.num_train if split == "train" else cfg.num_test
    rare_counts: dict = {}
    out = []
    for _ in range(count):
        scene = _sample_scene(rng, cfg, split, rare_counts)
        out.append((scene, _render(scene, rng)))
    return out


def _hico_box(box, one_based: bool) -> list[int]:
    x1, y1, x2, y2 = box
    # continuous [x1, x2) -> inclusive pixel indices; the test file keeps 1-based MAT coordinates
    return [x1 + 1, y1 + 1, x2, y2] if one_based else [x1, y1, x2 - 1, y2 - 1]


def _hico_entries(scenes, split: str) -> list[dict]:
    names = classes.coco_object_names()
    lookup = classes.hico_hoi_id_lookup()
    entries = []
    for scene, _ in scenes:
        if split == "train":
            # one box per person / object, shared by the HOIs of the image (0-based)
            annotations = [
                {"bbox": _hico_box(e.box, False), "category_id": classes.VALID_COCO_IDS[names.index(e.name)]}
                for e in scene.entities
            ]
            hois = []
            for it in scene.interactions:
                obj_index = names.index(scene.entities[it.obj].name)
                for v in hico_verbs_for(it.pose, scene.entities[it.obj].name):
                    hois.append({"subject_id": it.person, "object_id": it.obj, "category_id": v + 1,
                                 "hoi_category_id": lookup[(obj_index, v)]})  # fmt: skip
            entries.append({"file_name": scene.file_name, "img_id": scene.image_id,
                            "annotations": annotations, "hoi_annotation": hois})  # fmt: skip
            continue
        # test: the MAT layout, boxes repeated for every HOI category of the image (1-based)
        by_category: dict[int, list] = {}
        for it in scene.interactions:
            obj_index = names.index(scene.entities[it.obj].name)
            for v in hico_verbs_for(it.pose, scene.entities[it.obj].name):
                by_category.setdefault(lookup[(obj_index, v)], []).append(it)
        annotations, hois = [], []
        for hoi_id in sorted(by_category):
            cat = classes.hico_hoi_categories()[hoi_id - 1]
            h0 = len(annotations)
            for it in by_category[hoi_id]:
                annotations.append({"bbox": _hico_box(scene.entities[it.person].box, True), "category_id": 1})
            o0 = len(annotations)
            for it in by_category[hoi_id]:
                annotations.append({"bbox": _hico_box(scene.entities[it.obj].box, True),
                                    "category_id": cat.object_coco_id})  # fmt: skip
            for k in range(len(by_category[hoi_id])):
                hois.append({"subject_id": h0 + k, "object_id": o0 + k, "category_id": cat.verb_id})
        entries.append({"file_name": scene.file_name, "annotations": annotations, "hoi_annotation": hois})
    return entries


def _write_images(root: Path, folder: str, scenes) -> None:
    target = root / "images" / folder
    target.mkdir(parents=True, exist_ok=True)
    for scene, data in scenes:
        (target / scene.file_name).write_bytes(data)


def _write_hico(root: Path, cfg: SyntheticConfig) -> dict:
    splits = {"train": generate_scenes(cfg, "train"), "test": generate_scenes(cfg, "test")}
    for split, scenes in splits.items():
        stem = "train2015" if split == "train" else "test2015"
        for i, (scene, _) in enumerate(scenes):
            scene.image_id = i + 1
            scene.file_name = f"HICO_{stem}_{i + 1:08d}.jpg"
        _write_images(root, stem, scenes)
    ann = root / "annotations"
    write_json(ann / "trainval_hico.json", _hico_entries(splits["train"], "train"), indent=None)
    test_entries = _hico_entries(splits["test"], "test")
    write_json(ann / "test_hico.json", test_entries, indent=None)
    with atomic_write(ann / "corre_hico.npy", "wb") as handle:
        np.save(handle, classes.hico_validity_matrix())
    known = {}
    for entry in test_entries:
        present = sorted({classes.coco_id_to_index(a["category_id"]) for a in entry["annotations"]} - {0})
        known[entry["file_name"]] = present
    write_json(ann / "known_objects_test.json", {"format": "hico_known_objects", "images": known}, indent=None)
    return _summary(splits)


def _vcoco_official(root: Path, cfg: SyntheticConfig) -> dict:
    """Write images and the official v-coco layout under ``root/official``."""
    splits = {"trainval": generate_scenes(cfg, "train"), "test": generate_scenes(cfg, "test")}
    names = classes.coco_object_names()
    images, annotations = [], []
    next_ann = 1
    per_split_persons: dict[str, list[tuple]] = {}
    for split, scenes in splits.items():
        folder = "train2014" if split == "trainval" else "val2014"
        offset = 1 if split == "trainval" else 500_001
        persons = []
        for i, (scene, _) in enumerate(scenes):
            scene.image_id = offset + i
            scene.file_name = f"COCO_{folder}_{scene.image_id:012d}.jpg"
            images.append({"id": scene.image_id, "file_name": scene.file_name,
                           "width": scene.width, "height": scene.height})  # fmt: skip
            ann_ids = []
            for e in scene.entities:
                x1, y1, x2, y2 = e.box
                annotations.append({"id": next_ann, "image_id": scene.image_id,
                                    "category_id": classes.VALID_COCO_IDS[names.index(e.name)],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                    "iscrowd": 0})  # fmt: skip
                ann_ids.append(next_ann)
                next_ann += 1
            for k, e in enumerate(scene.entities):
                if e.kind == "person":
                    persons.append((scene, k, ann_ids))
        per_split_persons[split] = persons
        _write_images(root, folder, scenes)
    categories = [{"id": cid, "name": names[i].replace("_", " "), "supercategory": "none"}
                  for i, cid in enumerate(classes.VALID_COCO_IDS)]  # fmt: skip
    data = root / "official" / "data"
    write_json(data / "instances_vcoco_all_2014.json",
               {"info": {"description": "hqm synthetic"}, "licenses": [], "images": images,
                "annotations": annotations, "categories": categories}, indent=None)  # fmt: skip
    for split, persons in per_split_persons.items():
        write_json(data / "vcoco" / f"vcoco_{split}.json", _vcoco_actions(persons), indent=None)
        ids = sorted({scene.image_id for scene, _ in splits[split]})
        with atomic_write(data / "splits" / f"vcoco_{split}.ids", "w", encoding="utf-8") as handle:
            handle.write("".join(f"{i}\n" for i in ids))
    with atomic_write(root / "official" / "prior.pickle", "wb") as handle:
        pickle.dump(_vcoco_prior(), handle, protocol=2)
    return _summary({"train": splits["trainval"], "test": splits["test"]})


def _vcoco_actions(persons: list[tuple]) -> list[dict]:
    """The 26 official action objects for the given persons (scene, entity index, ann ids)."""
    out = []
    for action, roles in classes.VCOCO_ACTION_ROLES:
        labels, role_ids = [], [[] for _ in roles]
        for scene, k, ann_ids in persons:
            role_obj = [0] * len(roles)
            role_obj[0] = ann_ids[k]
            label = 0
            if scene.idle.get(k) == action:
                label = 1
            for it in scene.interactions:
                if it.person != k:
                    continue
                for act, role in POSE_VCOCO_ROLES[it.pose]:
                    if act == action and role in roles:
                        label = 1
                        role_obj[roles.index(role)] = ann_ids[it.obj]
            labels.append(label)
            for r in range(len(roles)):
                role_ids[r].append(role_obj[r])
        out.append({
            "action_name": action,
            "role_name": list(roles),
            "include": [[] for _ in roles],
            "image_id": [scene.image_id for scene, _, _ in persons],
            "ann_id": [ann_ids[k] for _, k, ann_ids in persons],
            "label": labels,
            "role_object_id": [x for ids in role_ids for x in ids],
        })
    return out


def _vcoco_prior() -> dict[int, np.ndarray]:
    """prior.pickle: {object index: (1, 29)} in VSGNet's alphabetical column order."""
    allowed = set()
    for pose, objs in POSE_OBJECTS.items():
        for obj in objs:
            for action, role in POSE_VCOCO_ROLES[pose]:
                allowed.add((f"{action}_{role}", classes.coco_object_names().index(obj)))
    prior = {}
    for o in range(classes.NUM_OBJECT_CLASSES):
        row = np.zeros((1, len(classes.VCOCO_PRIOR_COLUMN_ORDER)), dtype=np.float64)
        for j, name in enumerate(classes.VCOCO_PRIOR_COLUMN_ORDER):
            if "_" not in name or name in classes.VCOCO_AGENT_ONLY or (name, o) in allowed:
                row[0, j] = 1.0
        prior[o] = row
    return prior


def _summary(splits) -> dict:
    counts = {s: {"images": len(v), "interactions": sum(len(sc.interactions) for sc, _ in v)} for s, v in splits.items()}
    return counts


def make_synthetic(cfg: SyntheticConfig, fmt: str, out_root: str | os.PathLike) -> dict:
    """Generate the dataset into ``out_root`` (replaced atomically); returns per-split counts."""
    if fmt not in ("hico", "vcoco"):
        raise HqmError(f"make-synthetic: unknown format '{fmt}' (hico or vcoco)")
    for name in ("num_train", "num_test", "max_people", "max_objects"):
        if getattr(cfg, name) < 1:
            raise HqmError(f"synthetic.{name}: must be at least 1, got {getattr(cfg, name)}")
    if cfg.layout not in ("slots", "random"):
        raise HqmError(f"synthetic.layout: must be 'slots' or 'random', got {cfg.layout!r}")
    if cfg.image_size < 96:
        raise HqmError(f"synthetic.image_size: must be at least 96 pixels, got {cfg.image_size}")
    out_root = Path(out_root)
    out_root.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_root)
    try:
        if fmt == "hico":
            summary = _write_hico(tmp, cfg)
        else:
            from hqm.data.vcoco_convert import convert_vcoco

            summary = _vcoco_official(tmp, cfg)
            official = tmp / "official"
            convert_vcoco(official / "data", official / "prior.pickle", tmp / "annotations")
        if out_root.exists():
            shutil.rmtree(out_root)
        os.replace(tmp, out_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
