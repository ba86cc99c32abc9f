"""QPIC's training augmentation and test transform (method.md §2.3), every scale configurable.

Transforms take and return ``(image, boxes, box_ids)``: a PIL image, ``boxes`` FloatTensor[N, 4]
absolute xyxy in pixels of the current image and ``box_ids`` LongTensor[N], the index of each box in
the annotation file, so the dataset can tell which boxes a crop removed. Randomness comes from
torch's global generator (seeded per DataLoader worker by torch).

The image operations are PIL's, called exactly as torchvision's functional API calls them on PIL
images (bit-identical, checked against torchvision in tests/data/test_transforms_no_torchvision.py);
hqm does not import torchvision at runtime, whose import costs ~3 s of CPU per process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance

from hqm.config import AugmentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Sample = tuple[Image.Image, torch.Tensor, torch.Tensor]
Transform = Callable[[Image.Image, torch.Tensor, torch.Tensor], Sample]


def _randint(low: int, high: int) -> int:
    """Uniform integer in [low, high] inclusive."""
    return int(torch.randint(low, high + 1, (1,)).item())


def hflip(image: Image.Image, boxes: torch.Tensor, box_ids: torch.Tensor) -> Sample:
    """Mirror the image; x1' = W - x2, x2' = W - x1."""
    w = image.width
    flipped = boxes[:, [2, 1, 0, 3]] * torch.tensor([-1.0, 1.0, -1.0, 1.0]) + torch.tensor([w, 0.0, w, 0.0])
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), flipped, box_ids


def resized_shape(width: int, height: int, size: int, max_size: int | None) -> tuple[int, int]:
    """(h, w) with the shorter side ``size`` unless that pushes the longer side past ``max_size``."""
    short, long = min(width, height), max(width, height)
    if max_size is not None and long / short * size > max_size:
        size = int(round(max_size * short / long))
    if short == size:
        return height, width
    new_long = int(size * long / short)
    if max_size is not None:
        new_long = min(new_long, max_size)  # rounding of ``size`` may overshoot by one pixel
    return (new_long, size) if width < height else (size, new_long)


def resize(image: Image.Image, boxes: torch.Tensor, box_ids: torch.Tensor, size: int, max_size: int | None) -> Sample:
    h, w = resized_shape(image.width, image.height, size, max_size)
    scale = torch.tensor([w / image.width, h / image.height, w / image.width, h / image.height])
    # as torchvision's resize of a PIL image: bilinear (PIL always antialiases), no-op at equal size
    resized = image if (h, w) == (image.height, image.width) else image.resize((w, h), Image.BILINEAR)
    return resized, boxes * scale, box_ids


def crop(image: Image.Image, boxes: torch.Tensor, box_ids: torch.Tensor, top: int, left: int, height: int, width: int) -> Sample:
    """Crop; boxes are shifted and clipped to the crop, boxes left with no area are removed."""
    shifted = boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype)
    shifted[:, 0::2] = shifted[:, 0::2].clamp(0, width)
    shifted[:, 1::2] = shifted[:, 1::2].clamp(0, height)
    keep = (shifted[:, 2] > shifted[:, 0]) & (shifted[:, 3] > shifted[:, 1])
    return image.crop((left, top, left + width, top + height)), shifted[keep], box_ids[keep]


class Compose:
    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, image, boxes, box_ids) -> Sample:
        for t in self.transforms:
            image, boxes, box_ids = t(image, boxes, box_ids)
        return image, boxes, box_ids


class RandomHorizontalFlip:
    def __init__(self, p: float):
        self.p = p

    def __call__(self, image, boxes, box_ids) -> Sample:
        if torch.rand(()).item() < self.p:
            return hflip(image, boxes, box_ids)
        return image, boxes, box_ids


class RandomResize:
    """Shorter side drawn uniformly from ``sizes``; longer side at most ``max_size``."""

    def __init__(self, sizes: Sequence[int], max_size: int | None = None):
        self.sizes, self.max_size = list(sizes), max_size

    def __call__(self, image, boxes, box_ids) -> Sample:
        size = self.sizes[_randint(0, len(self.sizes) - 1)]
        return resize(image, boxes, box_ids, size, self.max_size)


class RandomSizeCrop:
    """Crop width and height each uniform in [min_size, min(side, max_size)], random position."""

    def __init__(self, min_size: int, max_size: int):
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image, boxes, box_ids) -> Sample:
        w = _randint(min(self.min_size, image.width), min(image.width, self.max_size))
        h = _randint(min(self.min_size, image.height), min(image.height, self.max_size))
        top = _randint(0, image.height - h)
        left = _randint(0, image.width - w)
        return crop(image, boxes, box_ids, top, left, h, w)


class RandomSelect:
    """``first`` with probability ``p``, otherwise ``second``."""

    def __init__(self, first: Transform, second: Transform, p: float = 0.5):
        self.first, self.second, self.p = first, second, p

    def __call__(self, image, boxes, box_ids) -> Sample:
        if torch.rand(()).item() < self.p:
            return self.first(image, boxes, box_ids)
        return self.second(image, boxes, box_ids)


# PIL enhancers in torchvision ColorJitter's index order: 0 brightness, 1 contrast, 2 saturation
_ENHANCERS = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)


class PhotometricJitter:
    """Brightness, contrast and saturation jitter (boxes untouched); no hue (QPIC's ColorJitter).

    Same random draws, in the same order, as ``torchvision.transforms.ColorJitter(s, s, s)``: a
    permutation of its 4 operations (hue included, skipped), then one uniform factor in
    [max(0, 1 - s), 1 + s] per operation, each applied with the PIL enhancer torchvision uses.
    """

    def __init__(self, strength: float):
        self.low, self.high = max(0.0, 1.0 - float(strength)), 1.0 + float(strength)
        self.enabled = strength > 0

    def __call__(self, image, boxes, box_ids) -> Sample:
        if not self.enabled:
            return image, boxes, box_ids
        order = torch.randperm(4)
        factors = [float(torch.empty(1).uniform_(self.low, self.high)) for _ in _ENHANCERS]
        for index in order.tolist():
            if index < len(_ENHANCERS):  # index 3 is hue, off
                image = _ENHANCERS[index](image).enhance(factors[index])
        return image, boxes, box_ids


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB, H x W -> FloatTensor[3, H, W]: /255, then (x - mean) / std with the ImageNet statistics."""
    pixels = torch.from_numpy(np.array(image, np.uint8, copy=True))  # uint8 [H, W, 3]
    tensor = pixels.view(image.height, image.width, len(image.getbands())).permute(2, 0, 1).contiguous()
    tensor = tensor.to(dtype=torch.get_default_dtype()).div(255)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=tensor.dtype).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=tensor.dtype).view(-1, 1, 1)
    return tensor.sub_(mean).div_(std)


def build_train_transform(aug: AugmentConfig) -> Compose:
    """Flip -> jitter -> (resize | resize, crop, resize); the test transform for policy ``none``."""
    if aug.policy == "none":
        return build_test_transform(aug)
    return Compose([
        RandomHorizontalFlip(aug.flip_prob),
        PhotometricJitter(aug.color_jitter),
        RandomSelect(
            RandomResize(aug.scales, max_size=aug.max_size),
            Compose([
                RandomResize(aug.crop_resize_scales),
                RandomSizeCrop(aug.crop_min_size, aug.crop_max_size),
                RandomResize(aug.scales, max_size=aug.max_size),
            ]),
        ),
    ])  # fmt: skip


def build_test_transform(aug: AugmentConfig) -> Compose:
    """Shorter side ``test_scale``, longer side at most ``max_size``."""
    return Compose([RandomResize([aug.test_scale], max_size=aug.max_size)])
