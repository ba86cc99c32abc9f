"""GBS: ground-truth bounding-box shifting and the spatial query encoder (method.md §8.2).

The shifting rule is the one coded upstream (HQM ``augmented_bbox``), vectorised: all tries of
both sides of a batch are drawn in one ``randint`` call from a dedicated generator, every try is
evaluated at once, and the first accepted try of each acceptance group is selected with tensor
ops (no Python retry loop, no device synchronisation).

Per side (subject first, then object), over the *valid* pairs (both GT boxes non-zero):
scale r = 1 + step*a, shift (step*u*w, step*v*h), a, u, v uniform in {-steps, ..., steps-1};
the shifted box is clamped to [0, W-1] x [0, H-1] in pixels of the augmented image; a box is
*ok* when iou_low < IoU(GT, shifted) < iou_high. A try is accepted for a group (the whole
batch, one image or one box) when the fraction of ok boxes of the group is >= accept_ratio;
then only the ok boxes of that try are replaced. Boxes not replaced keep their GT coordinates;
a group with no accepted try within ``max_tries`` stays entirely unshifted.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hqm.config import GBSConfig


def pack_pairs(targets: list[dict]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad the per-image GT pairs of a batch.

    Returns ``sub_boxes [B, N, 4]``, ``obj_boxes [B, N, 4]`` (normalised cxcywh, zeros on padding),
    ``pair_mask BoolTensor[B, N]`` (True on real pairs) and ``sizes [B, 2]`` = augmented (h, w),
    with N = max #pairs over the batch (0 when no image has a pair).
    """
    device = targets[0]["sub_boxes"].device
    counts = [int(t["sub_boxes"].shape[0]) for t in targets]  # shapes are host-side: no sync
    batch, n_max = len(targets), max(counts, default=0)
    sub = torch.zeros(batch, n_max, 4, device=device)
    obj = torch.zeros(batch, n_max, 4, device=device)
    pair_mask = torch.zeros(batch, n_max, dtype=torch.bool, device=device)
    for b, (t, n) in enumerate(zip(targets, counts)):
        sub[b, :n] = t["sub_boxes"]
        obj[b, :n] = t["obj_boxes"]
        pair_mask[b, :n] = True
    sizes = torch.stack([torch.as_tensor(t["aug_size"], device=device) for t in targets]).float()
    return sub, obj, pair_mask, sizes


def _cxcywh_to_xyxy(boxes: Tensor, width: Tensor, height: Tensor) -> Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack(
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], -1
    )


def _xyxy_to_cxcywh(boxes: Tensor, width: Tensor, height: Tensor) -> Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(
        [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height], -1
    )


def paired_iou(a: Tensor, b: Tensor) -> Tensor:
    """Continuous IoU (no +1) of xyxy boxes ``a [..., 4]`` and ``b [..., 4]`` element-wise -> ``[...]``."""
    inter_w = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    inter_h = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)  # 0/0 = NaN for degenerate boxes: never in band


def candidate_boxes(gt: Tensor, ints: Tensor, width: Tensor, height: Tensor, step: float) -> Tensor:
    """Shifted versions of pixel xyxy boxes ``gt [N, 4]`` for every try.

    ``ints [T, 3, N]`` holds the integers (a, v, u) of each try (upstream draw order: scale,
    vertical, horizontal); ``width``/``height [N]`` are the image sizes in pixels. Returns
    ``[T, N, 4]`` clamped to [0, W-1] x [0, H-1].
    """
    scale = 1 + step * ints[:, 0].to(gt.dtype)
    v = ints[:, 1].to(gt.dtype)
    u = ints[:, 2].to(gt.dtype)
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2 + step * u * w, (gt[:, 1] + gt[:, 3]) / 2 + step * v * h
    half_w, half_h = scale * w / 2, scale * h / 2
    return torch.stack(
        [
            (cx - half_w).clamp(min=0),
            (cy - half_h).clamp(min=0),
            torch.minimum(cx + half_w, width - 1),
            torch.minimum(cy + half_h, height - 1),
        ],
        -1,
    )


def select_accepted(ok: Tensor, valid: Tensor, group: Tensor, num_groups: int, ratio: float) -> Tensor:
    """Index of the first accepted try of each box's group, or -1 when the group never accepts.

    ``ok BoolTensor[T, N]`` in-band flags, ``valid BoolTensor[N]``, ``group LongTensor[N]`` in
    [0, num_groups). A try is accepted for a group when (#ok valid boxes) / (#valid boxes) >= ratio.
    Returns ``LongTensor[N]``.
    """
    tries = ok.shape[0]
    in_band = (ok & valid).double()
    hits = torch.zeros(tries, num_groups, dtype=torch.float64, device=ok.device)
    hits.index_add_(1, group, in_band)
    count = torch.zeros(num_groups, dtype=torch.float64, device=ok.device)
    count.index_add_(0, group, valid.double())
    accepted = (hits / count.clamp(min=1) >= ratio) & (count > 0)  # [T, G]
    first = accepted.to(torch.uint8).argmax(0)  # argmax returns the first maximal index
    first = torch.where(accepted.any(0), first, torch.full_like(first, -1))
    return first[group]


def shift_side(
    gt: Tensor, valid: Tensor, group: Tensor, num_groups: int, width: Tensor, height: Tensor,
    ints: Tensor, cfg: GBSConfig,
) -> tuple[Tensor, Tensor]:
    """Apply the GBS rule to one side. ``gt [N, 4]`` pixel xyxy, ``ints [T, 3, N]``.

    Returns the new pixel boxes ``[N, 4]`` and ``shifted BoolTensor[N]``.
    """
    candidates = candidate_boxes(gt, ints, width, height, cfg.step)  # [T, N, 4]
    iou = paired_iou(gt.unsqueeze(0), candidates)
    ok = (iou > cfg.iou_low) & (iou < cfg.iou_high)
    chosen = select_accepted(ok, valid, group, num_groups, cfg.accept_ratio)  # [N]
    take = chosen.clamp(min=0)
    arange = torch.arange(gt.shape[0], device=gt.device)
    shifted = (chosen >= 0) & valid & ok[take, arange]
    new = torch.where(shifted.unsqueeze(-1), candidates[take, arange], gt)
    return new, shifted


def shift_pairs(
    sub: Tensor, obj: Tensor, pair_mask: Tensor, sizes: Tensor, cfg: GBSConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """GBS over one (micro-)batch.

    ``sub``/``obj [B, N, 4]`` normalised cxcywh, ``pair_mask [B, N]``, ``sizes [B, 2]`` = (h, w)
    of the augmented images. Returns shifted ``sub``, ``obj`` (same layout; unshifted boxes are
    the GT values bit for bit) and the ``BoolTensor[B, N]`` flags of the boxes that were shifted.
    """
    batch, n_max = pair_mask.shape
    if n_max == 0:
        return sub, obj, pair_mask.clone(), pair_mask.clone()
    device = sub.device
    flat = batch * n_max
    height = sizes[:, 0:1].expand(batch, n_max).reshape(flat)
    width = sizes[:, 1:2].expand(batch, n_max).reshape(flat)
    sub_px = _cxcywh_to_xyxy(sub.reshape(flat, 4), width, height)
    obj_px = _cxcywh_to_xyxy(obj.reshape(flat, 4), width, height)
    valid = pair_mask.reshape(flat) & sub_px.ne(0).any(-1) & obj_px.ne(0).any(-1)
    scope = cfg.acceptance_scope
    if scope == "batch":
        group, num_groups = torch.zeros(flat, dtype=torch.long, device=device), 1
    elif scope == "image":
        group, num_groups = torch.arange(batch, device=device).repeat_interleave(n_max), batch
    else:  # "box": every box is its own group
        group, num_groups = torch.arange(flat, device=device), flat
    # One draw for both sides and every try: [side, try, (a, v, u), box].
    ints = torch.randint(
        -cfg.steps, cfg.steps, (2, cfg.max_tries, 3, flat), generator=generator
    ).to(device, non_blocking=True)
    new_sub, sub_shifted = shift_side(sub_px, valid, group, num_groups, width, height, ints[0], cfg)
    new_obj, obj_shifted = shift_side(obj_px, valid, group, num_groups, width, height, ints[1], cfg)
    out_sub = torch.where(
        sub_shifted.unsqueeze(-1), _xyxy_to_cxcywh(new_sub, width, height), sub.reshape(flat, 4)
    )
    out_obj = torch.where(
        obj_shifted.unsqueeze(-1), _xyxy_to_cxcywh(new_obj, width, height), obj.reshape(flat, 4)
    )
    return (
        out_sub.reshape(batch, n_max, 4),
        out_obj.reshape(batch, n_max, 4),
        sub_shifted.reshape(batch, n_max),
        obj_shifted.reshape(batch, n_max),
    )


def spatial_vector(sub: Tensor, obj: Tensor) -> Tensor:
    """The 12-d pair descriptor of method.md §8.2.4 from normalised cxcywh ``[..., 4]`` -> ``[..., 12]``.

    [s_cx, s_cy, s_w, s_h, o_cx, o_cy, o_w, o_h, s_cx - o_cx, s_cy - o_cy, s_w*s_h, o_w*o_h];
    all-zero input rows (padding) give all-zero vectors.
    """
    return torch.cat(
        [
            sub,
            obj,
            sub[..., :2] - obj[..., :2],
            (sub[..., 2] * sub[..., 3]).unsqueeze(-1),
            (obj[..., 2] * obj[..., 3]).unsqueeze(-1),
        ],
        -1,
    )


class SpatialQueryEncoder(nn.Module):
    """``query_embed_sp``: MLP 12 -> d -> d (ReLU between) followed by tanh.

    Parameter names ``layers.0.*`` / ``layers.1.*`` match the HQM checkpoint layout.
    """

    def __init__(self, hidden_dim: int = 256, in_dim: int = 12):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_dim, hidden_dim), nn.Linear(hidden_dim, hidden_dim)])

    def forward(self, features: Tensor) -> Tensor:
        """``features [..., 12]`` -> positional queries ``[..., d]`` in (-1, 1)."""
        return torch.tanh(self.layers[1](torch.relu(self.layers[0](features))))
