"""GBS shifting (method.md §8.2): band, clamping, acceptance statistics, validity, RNG."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hqm.config import GBSConfig
from hqm.models import gbs

torch.set_num_threads(1)


def _enumerated_band_probability(cfg: GBSConfig) -> float:
    """P(IoU in band) of one box over the exact (2*steps)^3 draws, away from the borders (float64)."""
    hits = 0
    values = range(-cfg.steps, cfg.steps)
    for a, u, v in itertools.product(values, values, values):
        r, cx, cy = 1 + cfg.step * a, 0.5 + cfg.step * u, 0.5 + cfg.step * v  # unit GT box [0,1]^2
        iw = max(0.0, min(1.0, cx + r / 2) - max(0.0, cx - r / 2))
        ih = max(0.0, min(1.0, cy + r / 2) - max(0.0, cy - r / 2))
        inter = iw * ih
        iou = inter / (1 + r * r - inter)
        hits += cfg.iou_low < iou < cfg.iou_high
    return hits / (2 * cfg.steps) ** 3


def _accept_probability(n: int, p: float, ratio: float) -> float:
    """P(#ok / n >= ratio) with #ok ~ Binomial(n, p)."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1) if j / n >= ratio)


def _targets(num_images: int, pairs: int, seed: int = 0, size=(1000, 1000)) -> list[dict]:
    """Boxes small and central enough that no shifted version touches the border."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_images):
        centre = 0.4 + 0.2 * torch.rand(pairs, 2, generator=g)
        wh = 0.05 + 0.1 * torch.rand(pairs, 2, generator=g)
        centre_o = 0.4 + 0.2 * torch.rand(pairs, 2, generator=g)
        wh_o = 0.05 + 0.1 * torch.rand(pairs, 2, generator=g)
        out.append({"sub_boxes": torch.cat([centre, wh], 1), "obj_boxes": torch.cat([centre_o, wh_o], 1),
                    "aug_size": torch.tensor(size)})
    return out


def _run(targets, cfg, seed=0):
    sub, obj, mask, sizes = gbs.pack_pairs(targets)
    g = torch.Generator().manual_seed(seed)
    return (sub, obj, mask, sizes), gbs.shift_pairs(sub, obj, mask, sizes, cfg, g)


def _pixel_iou(a, b, sizes):
    h, w = sizes[:, 0, None].double(), sizes[:, 1, None].double()
    def px(x):
        x = x.double()
        return torch.stack([(x[..., 0] - x[..., 2] / 2) * w, (x[..., 1] - x[..., 3] / 2) * h,
                            (x[..., 0] + x[..., 2] / 2) * w, (x[..., 1] + x[..., 3] / 2) * h], -1)
    return gbs.paired_iou(px(a), px(b))


def test_enumeration_matches_spec_table():
    assert _enumerated_band_probability(GBSConfig()) == pytest.approx(0.454, abs=5e-4)


def test_shifted_boxes_lie_in_band_and_others_stay_gt():
    targets = _targets(num_images=60, pairs=3, size=(480, 640))
    (sub, obj, mask, sizes), (new_sub, new_obj, s_sh, o_sh) = _run(targets, GBSConfig(acceptance_scope="image"))
    assert s_sh.any() and o_sh.any() and not s_sh.all()
    for gt, new, shifted in ((sub, new_sub, s_sh), (obj, new_obj, o_sh)):
        iou = _pixel_iou(gt, new, sizes)
        assert ((iou[shifted] > 0.4 - 1e-5) & (iou[shifted] < 0.6 + 1e-5)).all()
        assert torch.equal(new[~shifted], gt[~shifted])  # bit-identical GT


def test_clamping_to_image_in_pixels():
    # Boxes on the borders of a 200 x 100 (h x w) image: shifted boxes must stay in [0, W-1] x [0, H-1].
    box = torch.tensor([[0.1, 0.1, 0.2, 0.2], [0.9, 0.9, 0.2, 0.2], [0.5, 0.95, 0.9, 0.1]])
    targets = [{"sub_boxes": box, "obj_boxes": box.flip(0), "aug_size": torch.tensor([200, 100])}] * 40
    (_, _, _, sizes), (new_sub, new_obj, s_sh, o_sh) = _run(targets, GBSConfig(acceptance_scope="box"))
    assert s_sh.sum() > 20
    for new, shifted in ((new_sub, s_sh), (new_obj, o_sh)):
        b = new[shifted]
        x1, x2 = (b[:, 0] - b[:, 2] / 2) * 100, (b[:, 0] + b[:, 2] / 2) * 100
        y1, y2 = (b[:, 1] - b[:, 3] / 2) * 200, (b[:, 1] + b[:, 3] / 2) * 200
        assert (x1 >= -1e-3).all() and (y1 >= -1e-3).all()
        assert (x2 <= 99 + 1e-3).all() and (y2 <= 199 + 1e-3).all()
        assert (x2 > 99 - 1e-3).any() or (y2 > 199 - 1e-3).any() or (x1 < 1e-3).any()  # clamp did act


@pytest.mark.parametrize("pairs", [1, 3, 4, 10])
def test_single_try_acceptance_rate_matches_enumeration(pairs):
    cfg = GBSConfig(max_tries=1, acceptance_scope="image")
    p = _enumerated_band_probability(cfg)
    expected = _accept_probability(pairs, p, cfg.accept_ratio)
    images = 3000
    _, (_, _, s_sh, o_sh) = _run(_targets(images, pairs, seed=pairs), cfg, seed=pairs)
    for shifted in (s_sh, o_sh):
        rate = shifted.any(1).double().mean().item()
        sigma = math.sqrt(expected * (1 - expected) / images)
        assert abs(rate - expected) < 4.5 * sigma + 1e-3


def test_batch_scope_acceptance_within_40_tries_matches_enumeration():
    # 15 valid pairs per GPU batch (2 images: 8 + 7): P(accepted within 40) = 1 - (1 - q)^40.
    cfg = GBSConfig()
    q = _accept_probability(15, _enumerated_band_probability(cfg), cfg.accept_ratio)
    expected = 1 - (1 - q) ** cfg.max_tries
    g = torch.Generator().manual_seed(1)
    a, b = _targets(1, 8, seed=3)[0], _targets(1, 7, seed=4)[0]
    sub, obj, mask, sizes = gbs.pack_pairs([a, b])
    trials, accepted = 400, 0
    for _ in range(trials):
        _, _, s_sh, _ = gbs.shift_pairs(sub, obj, mask, sizes, cfg, g)
        accepted += bool(s_sh.any())
        # batch scope: when accepted, >= 70 % of the batch's boxes are shifted
        assert not s_sh.any() or s_sh.sum() >= math.ceil(0.7 * 15 - 1e-9)
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(accepted / trials - expected) < 4.5 * sigma


def test_whole_side_unshifted_after_failed_tries():
    cfg = GBSConfig(iou_low=0.97, iou_high=0.99)  # no draw of the grid reaches this band
    (sub, obj, _, _), (new_sub, new_obj, s_sh, o_sh) = _run(_targets(4, 5), cfg)
    assert not s_sh.any() and not o_sh.any()
    assert torch.equal(new_sub, sub) and torch.equal(new_obj, obj)


def test_invalid_pairs_are_neither_shifted_nor_counted():
    # Pair 1 has a missing (all-zero) object: it is never shifted and does not count in n, so the
    # one valid pair decides acceptance alone (P = p per try instead of q(2)).
    cfg = GBSConfig(max_tries=1, acceptance_scope="image")
    p = _enumerated_band_probability(cfg)
    targets = _targets(3000, 2)
    for t in targets:
        t["obj_boxes"][1] = 0
    _, (_, new_obj, s_sh, o_sh) = _run(targets, cfg)
    assert not s_sh[:, 1].any() and not o_sh[:, 1].any()
    assert torch.equal(new_obj[:, 1], torch.zeros(3000, 4))
    rate = s_sh[:, 0].double().mean().item()
    assert abs(rate - p) < 4.5 * math.sqrt(p * (1 - p) / 3000)


def test_box_scope_shifts_each_box_independently():
    cfg = GBSConfig(acceptance_scope="box", max_tries=2)
    p = _enumerated_band_probability(cfg)
    _, (_, _, s_sh, _) = _run(_targets(500, 4), cfg)
    expected = 1 - (1 - p) ** 2
    assert abs(s_sh.double().mean().item() - expected) < 4.5 * math.sqrt(expected * (1 - expected) / 2000)


def test_padding_slots_untouched_and_draws_in_one_call(monkeypatch):
    calls = []
    real = torch.randint
    monkeypatch.setattr(torch, "randint", lambda *a, **k: calls.append(a) or real(*a, **k))
    targets = _targets(1, 3) + _targets(1, 1, seed=5)
    (sub, obj, mask, _), (new_sub, new_obj, s_sh, o_sh) = _run(targets, GBSConfig())
    assert len(calls) == 1  # every try of both sides drawn at once
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert not s_sh[1, 1:].any() and torch.equal(new_sub[1, 1:], torch.zeros(2, 4))


def test_generator_makes_results_reproducible():
    targets = _targets(4, 3)
    _, first = _run(targets, GBSConfig(), seed=7)
    _, again = _run(targets, GBSConfig(), seed=7)
    _, other = _run(targets, GBSConfig(), seed=8)
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not all(torch.equal(x, y) for x, y in zip(first, other))


def test_spatial_vector_and_encoder():
    sub = torch.tensor([[0.5, 0.4, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0]])
    obj = torch.tensor([[0.1, 0.2, 0.4, 0.5], [0.0, 0.0, 0.0, 0.0]])
    f = gbs.spatial_vector(sub, obj)
    expected = [0.5, 0.4, 0.2, 0.3, 0.1, 0.2, 0.4, 0.5, 0.4, 0.2, 0.06, 0.2]
    np.testing.assert_allclose(f[0].numpy(), expected, rtol=1e-6)
    assert torch.equal(f[1], torch.zeros(12))
    enc = gbs.SpatialQueryEncoder(256)
    assert {k: tuple(v.shape) for k, v in enc.state_dict().items()} == {
        "layers.0.weight": (256, 12), "layers.0.bias": (256,),
        "layers.1.weight": (256, 256), "layers.1.bias": (256,)}
    q = enc(torch.randn(7, 2, 12) * 50)
    assert q.shape == (7, 2, 256) and q.abs().max() <= 1
    reference = torch.tanh(enc.layers[1](torch.relu(enc.layers[0](f))))
    assert torch.allclose(enc(f), reference)
