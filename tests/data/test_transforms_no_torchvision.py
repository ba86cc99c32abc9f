"""hqm.data.transforms without torchvision equals the torchvision-based transforms bit for bit.

torchvision is imported here only as the reference. PIL images are compared by mode, size and
bytes, tensors with torch.equal, and the global RNG state after each call must match (the same
draws were consumed). The reference pipeline is hqm's own control flow with the image operations
swapped for torchvision's, i.e. the code as it was when it called torchvision.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import ColorJitter

from hqm.config import AugmentConfig
from hqm.data import transforms as T

SMALL = AugmentConfig(scales=[40, 56, 72], max_size=120, crop_resize_scales=[48, 64], crop_min_size=24,
                      crop_max_size=56, test_scale=64, max_boxes=100)  # fmt: skip


def _image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Random RGB noise with a gradient, so resampling and enhancers see real structure."""
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ramp = np.linspace(0, 120, w, dtype=np.uint8)[None, :, None]
    return Image.fromarray(((noise // 2) + ramp).astype(np.uint8), "RGB")


def _boxes(rng: np.random.Generator, w: int, h: int, n: int) -> torch.Tensor:
    xy = rng.uniform(0, 1, (n, 4)) * np.array([w, h, w, h])
    return torch.tensor(np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:]) + 1], 1),
                        dtype=torch.float32)


def _same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes()


def _same_sample(a, b) -> bool:
    return _same_image(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_resize_flip_crop_equal_torchvision():
    rng = np.random.default_rng(0)
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(8, 140, 2))
        image = _image(rng, w, h)
        nh, nw = (int(v) for v in rng.integers(4, 200, 2))
        ours = T.resize(image, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), min(nh, nw), None)[0]
        th, tw = T.resized_shape(w, h, min(nh, nw), None)
        assert _same_image(ours, TF.resize(image, [th, tw]))
        assert _same_image(T.hflip(image, torch.zeros(0, 4), torch.zeros(0))[0], TF.hflip(image))
        top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
        ch, cw = int(rng.integers(1, h - top + 1)), int(rng.integers(1, w - left + 1))
        cropped = T.crop(image, torch.zeros(0, 4), torch.zeros(0), top, left, ch, cw)[0]
        assert _same_image(cropped, TF.crop(image, top, left, ch, cw))
    same = _image(rng, 30, 20)  # already at the target size: both return the image itself
    assert T.resize(same, torch.zeros(0, 4), torch.zeros(0), 20, None)[0] is same


def test_to_normalized_tensor_equals_torchvision():
    rng = np.random.default_rng(1)
    for w, h in ((1, 1), (17, 5), (64, 48)):
        image = _image(rng, w, h)
        expected = TF.normalize(TF.to_tensor(image), T.IMAGENET_MEAN, T.IMAGENET_STD)
        ours = T.to_normalized_tensor(image)
        assert ours.dtype == expected.dtype and ours.is_contiguous() and torch.equal(ours, expected)


@pytest.mark.parametrize("strength", [0.0, 0.4, 1.5])
def test_photometric_jitter_equals_color_jitter(strength):
    rng = np.random.default_rng(2)
    # strength 0: hqm never built a ColorJitter (which would still draw its permutation)
    reference = ColorJitter(strength, strength, strength) if strength > 0 else (lambda image: image)
    ours = T.PhotometricJitter(strength)
    for seed in range(30):
        image, boxes = _image(rng, 24, 18), torch.rand(2, 4)
        torch.manual_seed(seed)
        out, out_boxes, _ = ours(image, boxes, torch.arange(2))
        our_rng = torch.get_rng_state()
        torch.manual_seed(seed)
        expected = reference(image)
        assert _same_image(out, expected) and out_boxes is boxes
        assert torch.equal(our_rng, torch.get_rng_state())


def _reference_ops(monkeypatch, strength: float) -> None:
    """Route hqm's transform classes through torchvision's image operations."""
    own_resize, own_hflip, own_crop = T.resize, T.hflip, T.crop

    def resize(image, boxes, box_ids, size, max_size):
        _, new_boxes, ids = own_resize(image, boxes, box_ids, size, max_size)
        h, w = T.resized_shape(image.width, image.height, size, max_size)
        return TF.resize(image, [h, w]), new_boxes, ids

    def hflip(image, boxes, box_ids):
        return (TF.hflip(image),) + own_hflip(image, boxes, box_ids)[1:]

    def crop(image, boxes, box_ids, top, left, height, width):
        return (TF.crop(image, top, left, height, width),) + own_crop(image, boxes, box_ids, top, left, height, width)[1:]

    jitter = ColorJitter(brightness=strength, contrast=strength, saturation=strength) if strength > 0 else None
    monkeypatch.setattr(T, "resize", resize)
    monkeypatch.setattr(T, "hflip", hflip)
    monkeypatch.setattr(T, "crop", crop)
    monkeypatch.setattr(T.PhotometricJitter, "__call__",
                        lambda self, image, boxes, box_ids: (jitter(image) if jitter else image, boxes, box_ids))


def _run(transform, image, boxes, ids, seed):
    torch.manual_seed(seed)
    out = transform(image, boxes, ids)
    tensor = T.to_normalized_tensor(out[0])
    return out, tensor, torch.get_rng_state()


@pytest.mark.parametrize("policy,jitter", [("qpic", 0.4), ("qpic", 0.0), ("none", 0.4)])
def test_train_and_test_pipelines_equal_the_torchvision_based_ones(monkeypatch, policy, jitter):
    aug = AugmentConfig(**{**SMALL.__dict__, "policy": policy, "color_jitter": jitter})
    rng = np.random.default_rng(3)
    cases = []
    for seed in range(60):
        w, h = (int(v) for v in rng.integers(20, 130, 2))
        cases.append((_image(rng, w, h), _boxes(rng, w, h, int(rng.integers(0, 5))), seed))
    ours = [_run(build(aug), image, boxes, torch.arange(len(boxes)), seed)
            for build in (T.build_train_transform, T.build_test_transform) for image, boxes, seed in cases]
    _reference_ops(monkeypatch, jitter)
    refs = [_run(build(aug), image, boxes, torch.arange(len(boxes)), seed)
            for build in (T.build_train_transform, T.build_test_transform) for image, boxes, seed in cases]
    sizes = set()
    for (out, tensor, state), (ref_out, ref_tensor, ref_state) in zip(ours, refs, strict=True):
        assert _same_sample(out, ref_out) and torch.equal(tensor, ref_tensor) and torch.equal(state, ref_state)
        sizes.add(out[0].size)
    assert len(sizes) > 5  # the draws really varied the output
