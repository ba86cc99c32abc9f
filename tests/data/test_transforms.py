"""Property tests of the QPIC augmentations: boxes stay inside and paired, two flips are identity."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hqm.config import AugmentConfig
from hqm.data.transforms import (
    build_test_transform,
    build_train_transform,
    crop,
    hflip,
    resize,
    resized_shape,
)

SMALL = AugmentConfig(scales=[64, 80, 96], max_size=160, crop_resize_scales=[64, 96], crop_min_size=40,
                      crop_max_size=80, test_scale=96, max_boxes=100)  # fmt: skip


@st.composite
def samples(draw):
    w = draw(st.integers(24, 120))
    h = draw(st.integers(24, 120))
    n = draw(st.integers(0, 6))
    boxes = []
    for _ in range(n):
        x1 = draw(st.floats(0, w - 2))
        y1 = draw(st.floats(0, h - 2))
        boxes.append([x1, y1, draw(st.floats(x1 + 1, w)), draw(st.floats(y1 + 1, h))])
    image = Image.new("RGB", (w, h), (draw(st.integers(0, 255)), 40, 90))
    return image, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.arange(n) * 3 + 1


def _inside(image, boxes):
    return bool(((boxes[:, 0] >= 0) & (boxes[:, 1] >= 0) & (boxes[:, 2] <= image.width + 1e-3)
                 & (boxes[:, 3] <= image.height + 1e-3) & (boxes[:, 2] > boxes[:, 0])
                 & (boxes[:, 3] > boxes[:, 1])).all())  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(samples())
def test_double_flip_is_identity(sample):
    image, boxes, ids = sample
    once = hflip(image, boxes, ids)
    twice = hflip(*once)
    assert twice[0].tobytes() == image.tobytes()
    assert torch.allclose(twice[1], boxes, atol=1e-4) and torch.equal(twice[2], ids)
    assert _inside(once[0], once[1]) or len(boxes) == 0


@settings(max_examples=40, deadline=None)
@given(samples(), st.integers(0, 10_000))
def test_train_transform_keeps_boxes_inside_and_paired(sample, seed):
    image, boxes, ids = sample
    torch.manual_seed(seed)
    out_image, out_boxes, out_ids = build_train_transform(SMALL)(image, boxes, ids)
    assert len(out_boxes) == len(out_ids) <= len(ids)
    assert set(out_ids.tolist()) <= set(ids.tolist())
    assert out_ids.tolist() == sorted(out_ids.tolist())  # order kept, so pairs stay aligned
    assert len(out_boxes) == 0 or _inside(out_image, out_boxes)
    assert min(out_image.size) in SMALL.scales or max(out_image.size) <= SMALL.max_size


@settings(max_examples=30, deadline=None)
@given(samples(), st.data())
def test_crop_shifts_clips_and_drops_in_step_with_ids(sample, data):
    image, boxes, ids = sample
    h = data.draw(st.integers(1, image.height))
    w = data.draw(st.integers(1, image.width))
    top = data.draw(st.integers(0, image.height - h))
    left = data.draw(st.integers(0, image.width - w))
    out_image, out_boxes, out_ids = crop(image, boxes, ids, top, left, h, w)
    assert out_image.size == (w, h)
    for box, bid in zip(out_boxes, out_ids, strict=True):
        src = boxes[(ids == bid).nonzero()[0, 0]]
        expected = torch.stack([(src[0] - left).clamp(0, w), (src[1] - top).clamp(0, h),
                                (src[2] - left).clamp(0, w), (src[3] - top).clamp(0, h)])  # fmt: skip
        assert torch.allclose(box, expected)
    assert _inside(out_image, out_boxes) or len(out_boxes) == 0


def test_resize_scales_boxes_with_the_image():
    image = Image.new("RGB", (200, 100))
    boxes = torch.tensor([[10.0, 20.0, 110.0, 80.0]])
    out, out_boxes, _ = resize(image, boxes, torch.tensor([0]), 50, None)
    assert out.size == (100, 50)
    assert torch.allclose(out_boxes, boxes / 2)
    assert resized_shape(200, 100, 80, max_size=120) == (60, 120)  # long side capped


def test_test_transform_is_deterministic_and_uses_the_test_scale():
    image = Image.new("RGB", (120, 60))
    out, _, _ = build_test_transform(SMALL)(image, torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long))
    assert out.size == (160, 80)  # short side 96 would make the long side 192 > 160
