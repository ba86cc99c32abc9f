"""Scene sampling, layout and rendering: one seeded NumPy stream per split."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from hqm.config import SyntheticConfig
from hqm.data.synthetic.catalogue import IDLE_POSES, OBJECTS, POSE_OBJECTS, RARE_COMBINATIONS
from hqm.data.synthetic.drawing import PERSON_COLOURS, Shape, draw_object, draw_person, limb_width
from hqm.data.synthetic.hard import HardPlan, case_weights, choose_plan, occluder, truncate


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
    occluders: list[tuple] = field(default_factory=list)  # ((x1, y1, x2, y2), rgb) drawn on top
    hard: str = ""  # the hard case drawn (hard.HARD_CASES), "" for none


def _group(rng: np.random.Generator, u: float, pose: str, obj: str | None, gap: float = 0.0) -> list[Entity]:
    """One person (and its object) laid out around the person's feet at (0, 0).

    ``gap`` > 0 leaves that many pixels between a held / kicked object and the hand / foot (a near miss).
    """
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
    if gap:  # clear the hand (foot): the limb's half line width plus the 1 px overlap of a contact
        gap += 1 + limb_width(height) / 2
    if pose == "hold":
        hx, hy = fig.hand
        thing = thing.moved(hx + facing * (ow / 2 - 1 + gap), hy)
    elif pose == "carry":
        hx, hy = fig.hand
        thing = thing.moved(hx, hy - oh / 2 + 1)
    elif pose == "kick":
        fx, fy = fig.foot
        thing = thing.moved(fx + facing * (ow / 2 - 1 + gap), fy)
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


def _sample_groups(rng, cfg: SyntheticConfig, split: str, rare_counts: dict, plan: HardPlan | None):
    """The people (with their objects) and the distractor objects of one scene, not yet placed.

    Returns groups, their poses ("" for a distractor), whether each misses its object (a near
    miss: no interaction) and the rare (pose, object) combinations used.
    """
    u = cfg.image_size / 128.0
    n_people = int(rng.integers(1, cfg.max_people + 1))
    n_objects = int(rng.integers(1, cfg.max_objects + 1))
    groups: list[list[Entity]] = []
    poses: list[str] = []
    near: list[bool] = []
    used_rare: list[tuple[str, str]] = []
    first_pose = plan.contact_pose() if plan else None
    for p in range(n_people):
        interacting = p < n_objects and (p == 0 or rng.random() < 0.75)
        miss = False
        if interacting:
            pose = first_pose if p == 0 and first_pose else str(rng.choice(list(POSE_OBJECTS)))
            options = list(POSE_OBJECTS[pose])
            obj = str(rng.choice(options))
            if split == "train" and (pose, obj) in RARE_COMBINATIONS:
                # at most rare_max_train training interactions, counting this scene's own ones
                if rare_counts.get((pose, obj), 0) + used_rare.count((pose, obj)) >= cfg.rare_max_train:
                    obj = str(rng.choice([o for o in options if (pose, o) not in RARE_COMBINATIONS]))
                else:
                    used_rare.append((pose, obj))
            miss = plan.near_miss(pose) if plan else False
            groups.append(_group(rng, u, pose, obj, plan.gap(u) if miss else 0.0))
        else:
            pose = str(rng.choice(IDLE_POSES))
            groups.append(_group(rng, u, pose, None))
        poses.append(pose)
        near.append(miss)
    n_interacting = sum(len(g) == 2 for g in groups)
    for _ in range(n_objects - n_interacting):
        obj = str(rng.choice(OBJECTS))
        ow, oh = _object_size(rng, obj, u)
        groups.append([Entity("object", obj, draw_object(obj, ow, oh, int(rng.choice((-1, 1)))))])
        poses.append("")
        near.append(False)
    return groups, poses, near, used_rare


def _sample_scene(rng, cfg: SyntheticConfig, split: str, rare_counts: dict, plan: HardPlan | None = None) -> Scene:
    size = cfg.image_size
    u = size / 128.0
    groups, poses, near, used_rare = _sample_groups(rng, cfg, split, rare_counts, plan)
    slots = sum(g[0].kind == "person" for g in groups) if cfg.layout == "slots" else 0
    placed = _place(rng, groups, size, margin=2 * u, slots=slots)
    if plan is not None and plan.kind == "truncation":
        placed = truncate(placed, plan, size)
    entities: list[Entity] = []
    interactions: list[Interaction] = []
    idle: dict[int, str] = {}
    for gi, group in placed:
        pose = poses[gi]
        base = len(entities)
        entities.extend(group)
        if len(group) == 2 and not near[gi]:
            interactions.append(Interaction(base, base + 1, pose))
            if split == "train" and (pose, group[1].name) in used_rare:
                rare_counts[(pose, group[1].name)] = rare_counts.get((pose, group[1].name), 0) + 1
        elif group[0].kind == "person" and len(group) == 1:
            idle[base] = pose
    occluders = []
    if plan is not None and plan.kind == "occlusion":
        block = occluder(entities, interactions, plan, u)
        occluders = [block] if block else []
    for e in entities:
        x1, y1, x2, y2 = e.shape.extent
        e.box = (max(0, math.floor(x1)), max(0, math.floor(y1)), min(size, math.ceil(x2)), min(size, math.ceil(y2)))
    return Scene("", 0, size, size, entities, interactions, idle, occluders, plan.kind if plan else "")


def _background(width: int, height: int, tint: tuple[int, int, int], kind: str) -> Image.Image:
    """The canvas: one tint (``plain``), or the tint with red rising from half at the left edge to
    full at the right and blue likewise from top to bottom (``ramp``).

    DETR's attention never adds positional encodings to its values, so the box head learns absolute
    position only from what the backbone's features carry; a pretrained ResNet carries it (zero
    padding), a from-scratch one learns it slowly. The ramp puts position into every pixel's colour.
    """
    if kind == "plain":
        return Image.new("RGB", (width, height), tint)
    canvas = np.empty((height, width, 3))
    canvas[..., 0] = tint[0] * np.linspace(0.5, 1.0, width)[None, :]
    canvas[..., 1] = tint[1]
    canvas[..., 2] = tint[2] * np.linspace(0.5, 1.0, height)[:, None]
    return Image.fromarray(canvas.round().astype(np.uint8), "RGB")


def _render(scene: Scene, rng: np.random.Generator, background: str = "plain") -> bytes:
    tint = tuple(int(v) for v in rng.integers(225, 256, size=3))
    image = _background(scene.width, scene.height, tint, background)
    draw = ImageDraw.Draw(image)
    for e in scene.entities:
        e.shape.render(draw)
    for box, colour in scene.occluders:
        draw.rectangle(box, fill=colour)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def generate_scenes(cfg: SyntheticConfig, split: str, hard_test: bool = False) -> list[tuple[Scene, bytes]]:
    """All scenes of a split with their JPEG bytes (deterministic in ``cfg.seed``).

    A scene is hard with probability ``cfg.hard_fraction`` (the case weighted by ``cfg.hard_<case>``);
    ``hard_test`` draws a test split of other scenes (its own seed stream) in which every scene is hard.
    """
    split_key = {"train": 0, "test": 1}[split] if not hard_test else 2
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, split_key])))
    hard_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([cfg.seed, split_key, 1])))
    count = cfg.num_train if split == "train" else cfg.num_test
    rare_counts: dict = {}
    out = []
    for _ in range(count):
        plan = choose_plan(case_weights(cfg), cfg.hard_fraction, hard_rng, force=hard_test)
        scene = _sample_scene(rng, cfg, split, rare_counts, plan)
        out.append((scene, _render(scene, rng, cfg.background)))
    return out


def summary(splits: dict[str, list[tuple[Scene, bytes]]]) -> dict:
    """Images and interactions per split (what ``hqm make-synthetic`` prints)."""
    return {s: {"images": len(v), "interactions": sum(len(sc.interactions) for sc, _ in v),
                "hard": sum(bool(sc.hard) for sc, _ in v)} for s, v in splits.items()}  # fmt: skip
