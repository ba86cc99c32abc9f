"""Scene sampling, layout and rendering: one seeded NumPy stream per split."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from hqm.config import SyntheticConfig
from hqm.data.synthetic.catalogue import IDLE_POSES, OBJECTS, POSE_OBJECTS, RARE_COMBINATIONS
from hqm.data.synthetic.drawing import PERSON_COLOURS, Shape, draw_object, draw_person


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
    colour = PERSON_COLOURS[int(rng.integers(len(PERSON_COLOURS)))]
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


def summary(splits: dict[str, list[tuple[Scene, bytes]]]) -> dict:
    """Images and interactions per split (what ``hqm make-synthetic`` prints)."""
    return {s: {"images": len(v), "interactions": sum(len(sc.interactions) for sc, _ in v)} for s, v in splits.items()}
