"""``hqm visualize``: what one checkpoint does on a few test images, as one PNG.

Per image (one row of four panels):

1. the top detected triplets (subject and object boxes, verb, object, score) after QPIC's
   post-processing;
2. the GT pairs shifted by GBS (``hqm.models.gbs.shift_pairs`` with the run's ``hard_queries.gbs``)
   with each box's IoU to its ground truth (``paired_iou``, in pixels of the network input, as the
   rule computes it);
3. / 4. the last decoder layer's cross-attention of the top triplet's query, without and with the
   AMM mask (``hqm.models.amm.build_amm_bias`` on the recorded logits of the learnable pass, as in
   training), averaged over heads; masked keys are marked.

The computing functions return plain arrays so tests can check the drawn quantities.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import random
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import torch
from matplotlib.patches import Rectangle  # noqa: E402

from hqm.config import AugmentConfig, DatasetConfig, RunConfig, from_dict, to_dict
from hqm.data import classes
from hqm.data.datasets import DatasetMeta, HOIDataset, build_dataset, collate, dataset_meta
from hqm.engine.checkpoint import load_checkpoint, load_weights
from hqm.errors import HqmError
from hqm.io import atomic_write
from hqm.models.amm import build_amm_bias
from hqm.models.box_ops import box_cxcywh_to_xyxy
from hqm.models.build import build_detector
from hqm.models.gbs import pack_pairs, paired_iou, shift_pairs
from hqm.models.postprocess import postprocess_hoi

PANEL_INCHES, GALLERY_DPI = 4, 100  # every panel is 400 x 400 pixels


@dataclass
class Triplet:
    query: int
    sub_box: np.ndarray  # [4] xyxy, original image pixels
    obj_box: np.ndarray  # [4]
    verb: str
    obj: str
    score: float


@dataclass
class ShiftedPairs:
    """GT and GBS-shifted boxes of one image, xyxy in pixels of the network input ``[N, 4]``."""

    gt_sub: np.ndarray
    gt_obj: np.ndarray
    sub: np.ndarray
    obj: np.ndarray
    sub_iou: np.ndarray  # [N] IoU(GT, shifted)
    obj_iou: np.ndarray
    sub_shifted: np.ndarray  # Bool[N]: the rule accepted a shift (else the GT box is kept)
    obj_shifted: np.ndarray
    input_size: tuple[int, int]  # (h, w) of the network input


@dataclass
class Attention:
    """One query's last-layer cross-attention per head ``[nheads, h, w]`` (softmax over keys)."""

    query: int
    layer: int
    unmasked: np.ndarray
    masked: np.ndarray
    masked_keys: np.ndarray  # Bool[nheads, h, w]: keys the AMM bias hid


def load_detector(checkpoint: str | Path, meta: DatasetMeta) -> tuple[torch.nn.Module, RunConfig]:
    """A run's checkpoint (with its ``config``) -> the detector for ``meta``'s classes, in eval mode."""
    saved = load_checkpoint(checkpoint)
    if not isinstance(saved.get("config"), dict):
        raise HqmError(f"{checkpoint}: no 'config' entry (only checkpoints of hqm train can be visualised)")
    cfg = from_dict(RunConfig, saved["config"], f"{checkpoint}: config")
    if cfg.dataset.format != meta.format:
        raise HqmError(f"{checkpoint}: trained on format {cfg.dataset.format!r}, --format is {meta.format!r}")
    model_cfg = from_dict(type(cfg.model), {**to_dict(cfg.model), "init_weights": None, "backbone_weights": None})
    model = build_detector(model_cfg, cfg.method, cfg.hard_queries, meta.num_obj_classes, meta.num_verb_classes)
    load_weights(model, checkpoint)
    return model.eval(), cfg


def pick_images(dataset: HOIDataset, count: int, seed: int) -> list[int]:
    """``count`` test images with at least one GT pair, drawn with ``seed``, in dataset order."""
    candidates = [i for i, rec in enumerate(dataset.records) if len(rec.hois)]
    if not candidates:
        raise HqmError(f"{dataset.meta.annotations('test')}: no test image has an HOI annotation")
    return sorted(random.Random(seed).sample(candidates, min(count, len(candidates))))


def top_triplets(pred: dict, k: int, fmt: str) -> list[Triplet]:
    """The ``k`` highest (query, verb) scores of one image's post-processed prediction."""
    verbs = classes.hico_verb_names() if fmt == "hico" else classes.VCOCO_VERB_CLASSES
    objects = classes.coco_object_names()
    scores = pred["verb_scores"]  # [Q, C_verb]
    order = np.argsort(-scores, axis=None, kind="stable")[:k]
    out = []
    for flat in order:
        q, v = divmod(int(flat), scores.shape[1])
        label = int(pred["obj_labels"][q])
        obj = objects[label] if label < len(objects) else "no object"
        out.append(Triplet(q, pred["sub_boxes"][q], pred["obj_boxes"][q], verbs[v], obj, float(scores[q, v])))
    return out


def gbs_shifted_pairs(target: dict, cfg, generator: torch.Generator) -> ShiftedPairs:
    """Shift one image's GT pairs with the GBS rule (``cfg``: GBSConfig) and measure the IoUs."""
    sub, obj, pair_mask, sizes = pack_pairs([target])
    new_sub, new_obj, sub_shifted, obj_shifted = shift_pairs(sub, obj, pair_mask, sizes, cfg, generator)
    h, w = (int(x) for x in sizes[0])
    scale = torch.tensor([w, h, w, h], dtype=torch.float32)

    def px(boxes: torch.Tensor) -> torch.Tensor:
        return box_cxcywh_to_xyxy(boxes[0]) * scale

    gt_sub, gt_obj, s, o = px(sub), px(obj), px(new_sub), px(new_obj)
    return ShiftedPairs(gt_sub.numpy(), gt_obj.numpy(), s.numpy(), o.numpy(),
                        paired_iou(gt_sub, s).numpy(), paired_iou(gt_obj, o).numpy(),
                        sub_shifted[0].numpy(), obj_shifted[0].numpy(), (h, w))


@torch.no_grad()
def amm_attention(model, image: torch.Tensor, mask: torch.Tensor, query: int, cfg,
                  generator: torch.Generator) -> Attention:
    """Last-layer cross-attention of ``query`` without / with AMM (``cfg``: AMMConfig).

    ``image [1, 3, H, W]``, ``mask Bool[1, H, W]``. The unmasked logits are those the learnable pass
    records; the masked ones come from the AMM pass whose every layer gets ``build_amm_bias``.
    """
    _, small_mask = model.backbone[0](image, mask)
    h, w = small_mask.shape[-2:]
    encoded = model.encode(image, mask)
    query_pos = model.query_embed.weight.unsqueeze(1)  # [Nq, 1, d]
    _, recorded = model.decode(encoded, query_pos, record_cross_logits=True)
    bias = build_amm_bias(recorded, cfg, generator)
    _, masked = model.decode(encoded, query_pos, cross_attn_bias=bias, record_cross_logits=True)
    layer = len(recorded) - 1
    hidden = bias(layer)[:, query].isneginf()  # [nheads, hw]

    def maps(logits: torch.Tensor) -> np.ndarray:
        return logits[:, query].float().softmax(-1).reshape(-1, h, w).numpy()

    return Attention(query, layer, maps(recorded[layer]), maps(masked[layer]), hidden.reshape(-1, h, w).numpy())


@dataclass
class GalleryRow:
    file_name: str
    image: np.ndarray  # [H, W, 3] uint8, original image
    triplets: list[Triplet]
    pairs: ShiftedPairs
    attention: Attention


def gallery_rows(model, cfg: RunConfig, dataset_root: str, fmt: str, num_images: int, seed: int,
                 top_k: int) -> list[GalleryRow]:
    """Everything the gallery draws, for ``num_images`` test images picked with ``seed``."""
    augment = cfg.augment if isinstance(cfg.augment, AugmentConfig) else AugmentConfig()
    dataset = build_dataset(DatasetConfig(format=fmt, root=str(dataset_root)), "test", augment)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for index in pick_images(dataset, num_images, seed):
        image, target = dataset[index]
        images, mask, targets = collate([(image, target)])
        with torch.no_grad():
            pred = postprocess_hoi(model(images, mask), targets[0]["orig_size"].unsqueeze(0))[0]
        triplets = top_triplets(pred, top_k, fmt)
        pairs = gbs_shifted_pairs(targets[0], cfg.hard_queries.gbs, generator)
        attention = amm_attention(model, images, mask, triplets[0].query, cfg.hard_queries.amm, generator)
        rows.append(GalleryRow(target["file_name"], np.asarray(dataset.load_image(index)), triplets, pairs, attention))
    return rows


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def _box(ax, box, colour: str, style: str = "-") -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.5, linestyle=style))


def _draw_triplets(ax, row: GalleryRow) -> None:
    ax.imshow(row.image)
    for rank, t in enumerate(row.triplets):
        _box(ax, t.sub_box, "tab:red")
        if t.obj != "no object":
            _box(ax, t.obj_box, "tab:blue")
        ax.text(float(t.sub_box[0]), float(t.sub_box[1]) + 2 + 9 * rank, f"{t.verb} {t.obj} {t.score:.2f}",
                fontsize=6, color="white", va="top", bbox={"facecolor": "black", "alpha": 0.6, "pad": 1})
    ax.set_title(f"{row.file_name}: top triplets", fontsize=8)


def _draw_gbs(ax, row: GalleryRow) -> None:
    p = row.pairs
    h, w = row.image.shape[:2]
    sx, sy = w / p.input_size[1], h / p.input_size[0]  # network input -> original pixels
    scale = np.array([sx, sy, sx, sy])
    ax.imshow(row.image)
    for i in range(len(p.sub)):
        for gt, new, iou, shifted, colour in ((p.gt_sub[i], p.sub[i], p.sub_iou[i], p.sub_shifted[i], "tab:red"),
                                              (p.gt_obj[i], p.obj[i], p.obj_iou[i], p.obj_shifted[i], "tab:blue")):
            if not np.any(gt):
                continue  # a V-COCO pair without object
            _box(ax, gt * scale, colour, ":")
            _box(ax, new * scale, colour)
            text = f"IoU {iou:.2f}" if shifted else "not shifted"
            ax.text(float(new[0] * sx), float(new[3] * sy), text, fontsize=6, color=colour, va="bottom",
                    bbox={"facecolor": "white", "alpha": 0.7, "pad": 1})
    ax.set_title("GBS: GT (dotted) and shifted (solid)", fontsize=8)


def _draw_attention(ax, row: GalleryRow, masked: bool) -> None:
    a = row.attention
    h, w = row.image.shape[:2]
    heat = (a.masked if masked else a.unmasked).mean(0)
    ax.imshow(row.image)
    ax.imshow(heat, cmap="inferno", alpha=0.6, extent=(0, w, h, 0), interpolation="nearest")
    if masked:
        ys, xs = np.nonzero(a.masked_keys.any(0))
        fh, fw = heat.shape
        ax.scatter((xs + 0.5) * w / fw, (ys + 0.5) * h / fh, marker="x", s=12, color="cyan", linewidths=0.8)
    what = "AMM-masked (x: masked in a head)" if masked else "unmasked"
    ax.set_title(f"query {a.query}, layer {a.layer}: {what}", fontsize=8)


def draw_gallery(rows: list[GalleryRow], out: str | Path) -> None:
    """One row of four panels per image; PNG of 1600 x 400·len(rows) pixels."""
    fig, axes = plt.subplots(len(rows), 4, figsize=(4 * PANEL_INCHES, len(rows) * PANEL_INCHES), squeeze=False)
    for ax_row, row in zip(axes, rows):
        _draw_triplets(ax_row[0], row)
        _draw_gbs(ax_row[1], row)
        _draw_attention(ax_row[2], row, masked=False)
        _draw_attention(ax_row[3], row, masked=True)
        for ax in ax_row:
            ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.15)
    with atomic_write(out, "wb") as handle:
        fig.savefig(handle, format="png", dpi=GALLERY_DPI)
    plt.close(fig)


def write_gallery(checkpoint: str | Path, dataset_root: str | Path, fmt: str, out: str | Path,
                  num_images: int = 3, seed: int = 0, top_k: int = 3) -> list[GalleryRow]:
    """Load, compute and draw; returns what was drawn."""
    model, cfg = load_detector(checkpoint, dataset_meta(DatasetConfig(format=fmt, root=str(dataset_root))))
    torch.manual_seed(seed)
    rows = gallery_rows(model, cfg, str(dataset_root), fmt, num_images, seed, top_k)
    draw_gallery(rows, out)
    return rows
