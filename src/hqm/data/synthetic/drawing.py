"""Drawing primitives that know their extent, so that boxes are tight around the drawn parts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PIL import ImageDraw

OBJECT_COLOURS = {
    "sports_ball": (240, 130, 20),
    "umbrella": (210, 30, 40),
    "kite": (30, 170, 60),
    "bicycle": (120, 40, 160),
    "horse": (140, 85, 40),
}
PERSON_COLOURS = ((20, 20, 90), (25, 25, 25), (10, 70, 110))


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
    s, c = Shape(), OBJECT_COLOURS[name]
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


def limb_width(height: float) -> float:
    """Line width of a stick figure's limbs for a figure ``height`` pixels tall."""
    return max(2.0, height / 20)


def draw_person(pose: str, height: float, facing: int, colour: tuple) -> Figure:
    """Stick figure standing on (0, 0); ``facing`` (+1 right, -1 left) is the object's side."""
    s = Shape()
    lw = limb_width(height)
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
