"""HICO-DET candidate gathering: validity mask, per-image cap, category lookup, Known-Object filter.

Step 1 of the pipeline in :mod:`hqm.evaluation.hico` (evaluation.md §1.7-1.9). QPIC-layout images
(one row per query, a score per verb) are reduced to their selected (query, verb) pairs in batches
of equal score shape, since the N x C expansion of all images would not fit in memory;
triplet-layout images (one row per candidate) are taken as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hqm.evaluation.hico_gt import Categories
from hqm.evaluation.matching import group_then_descending
from hqm.evaluation.predictions import ImagePrediction

if TYPE_CHECKING:
    from hqm.evaluation.hico import HicoOptions

QPIC_BATCH = 128  # QPIC-layout images per vectorised selection


def select_qpic_layout(batch: list[ImagePrediction], corre: np.ndarray, cap: int | None, drop_invalid: bool):
    """Candidate selection for a batch of QPIC-layout images with equal [N, C] score shapes.

    Per image: (query, verb) pairs of a stable descending sort of the masked scores, first ``cap``
    (invalid pairs dropped first if asked), returned in flat (query-major, verb-minor) order; the
    caller's global sort orders them. One ``np.partition`` over the batch replaces per-image sorts:
    keep what is above the cap-th largest value, then its ties in index order (as a stable sort).
    Returns (image position in batch [K], row [K], verb [K]).
    """
    scores = np.stack([p.verb_scores for p in batch])  # [B, N, C]
    labels = np.stack([p.obj_labels for p in batch])  # [B, N]
    b, n, c = scores.shape
    valid = corre[:, labels].transpose(1, 2, 0).reshape(b, n * c) > 0  # [B, N*C]
    masked = (scores * corre[:, labels].transpose(1, 2, 0)).reshape(b, n * c)
    keep = valid if drop_invalid else np.ones_like(valid)
    if cap is not None and n * c > cap and masked.min() >= 0:
        return _select_positive_first(masked, keep, cap, c)
    if cap is not None and n * c > cap:
        ranked = np.where(keep, masked, -np.inf)
        kth = np.partition(ranked, n * c - cap, axis=1)[:, n * c - cap][:, None]
        above = ranked > kth
        ties = (ranked == kth) & keep
        need = cap - above.sum(1, keepdims=True)
        keep = above | (ties & (np.cumsum(ties, axis=1) <= need))
    image, flat = np.nonzero(keep)
    rows, verbs = np.divmod(flat.astype(np.int32), np.int32(c))
    return image, rows, verbs


def _select_positive_first(masked: np.ndarray, keep: np.ndarray, cap: int, num_verbs: int):
    """:func:`select_qpic_layout` for non-negative scores: sort only the positive masked scores
    (a few percent of the pairs: most verb-object pairs are invalid), then fill images with fewer
    than ``cap`` positives with their zero-score pairs in index order (a stable sort's order)."""
    image, flat = np.nonzero(masked > 0)
    order = group_then_descending(image, masked[image, flat])
    image, flat = image[order], flat[order]
    starts = np.searchsorted(image, np.arange(len(masked) + 1))
    top = np.arange(len(image)) - starts[image] < cap
    image, flat = image[top], flat[top]
    counts = np.bincount(image, minlength=len(masked))
    short = np.flatnonzero(counts < cap)
    if len(short):  # rows (images), not detections
        fill = [np.flatnonzero((masked[b] == 0) & keep[b])[: cap - counts[b]] for b in short.tolist()]
        image = np.concatenate([image, np.repeat(short, [len(f) for f in fill])])
        flat = np.concatenate([flat, *fill])
        order = np.argsort(image, kind="stable")
        image, flat = image[order], flat[order]
    rows, verbs = np.divmod(flat.astype(np.int32), np.int32(num_verbs))
    return image, rows, verbs


class CandidateColumns:
    """Accumulates candidate columns image by image.

    Per query: sub / obj box (a QPIC-layout query has one box pair for all its verbs, so boxes are
    stored once per query, not per candidate). Per candidate: query index, object label, verb,
    raw score; per appended block: the image index and its number of candidates.
    """

    def __init__(self) -> None:
        self.cols: list[list[np.ndarray]] = [[], [], [], [], [], []]  # sub, obj | query, label, verb, score
        self.image_of: list[int] = []
        self.sizes: list[int] = []
        self.num_queries = 0
        self.mixed = False  # both layouts present: candidates must be put back in image order

    def add_image(self, i: int, pred: ImagePrediction, rows: np.ndarray, verbs: np.ndarray,
                  scores: np.ndarray) -> None:
        """The selected (row, verb, score) candidates of image ``i``; all its queries' boxes."""
        arrays = (pred.sub_boxes, pred.obj_boxes, rows + self.num_queries, pred.obj_labels[rows], verbs, scores)
        for col, arr in zip(self.cols, arrays):
            col.append(arr)
        self.num_queries += len(pred.sub_boxes)
        self.image_of.append(i)
        self.sizes.append(len(rows))

    def add_qpic_batch(self, batch: list[tuple[int, ImagePrediction]], corre: np.ndarray, opt: HicoOptions) -> None:
        """Select the candidates of a batch of QPIC-layout images (equal shapes) and add them."""
        pos, rows, verbs = select_qpic_layout([p for _, p in batch], corre, opt.max_hois_per_image,
                                              opt.drop_invalid)
        bounds = np.searchsorted(pos, np.arange(len(batch) + 1))
        for k, (i, p) in enumerate(batch):
            r, v = rows[bounds[k]:bounds[k + 1]], verbs[bounds[k]:bounds[k + 1]]
            self.add_image(i, p, r, v, p.verb_scores[r, v])

    def add_triplet_images(self, triplets: list[tuple[int, ImagePrediction]]) -> None:
        """Triplet-layout images in one block: every triplet is its own query."""
        total = sum(len(p) for _, p in triplets)
        blocks = (tuple(p.sub_boxes for _, p in triplets), tuple(p.obj_boxes for _, p in triplets),
                  (np.arange(self.num_queries, self.num_queries + total),),
                  tuple(p.obj_labels for _, p in triplets), tuple(p.verbs for _, p in triplets),
                  tuple(p.verb_scores for _, p in triplets))
        for col, block in zip(self.cols, blocks):
            col.extend(block)
        self.num_queries += total
        self.image_of.extend(i for i, _ in triplets)
        self.sizes.extend(len(p) for _, p in triplets)


def _subset(index, *arrays):
    """``arrays`` indexed by ``index``; no copy when ``index`` is None (nothing dropped or reordered)."""
    return arrays if index is None else tuple(x[index] for x in arrays)


def _collect(gt_test, preds: dict[str, ImagePrediction], corre: np.ndarray, opt: HicoOptions) -> CandidateColumns:
    """Columns of every image that records candidates (quirk Q3 skips images without GT boxes)."""
    columns = CandidateColumns()
    qpic_layout: dict[tuple[int, ...], list[tuple[int, ImagePrediction]]] = {}
    triplets: list[tuple[int, ImagePrediction]] = []
    for i, img in enumerate(gt_test):
        pred = preds.get(img.file_name)
        if pred is None or len(pred) == 0:
            continue
        if len(img.boxes) == 0 and not opt.fp_on_images_without_gt:
            continue  # quirk Q3: candidates of images without GT boxes are never recorded
        if pred.verbs is not None:
            triplets.append((i, pred))
            continue
        batch = qpic_layout.setdefault(pred.verb_scores.shape, [])
        batch.append((i, pred))
        if len(batch) == QPIC_BATCH:
            columns.add_qpic_batch(batch, corre, opt)
            batch.clear()
    for batch in qpic_layout.values():
        if batch:
            columns.add_qpic_batch(batch, corre, opt)
    if triplets:
        columns.add_triplet_images(triplets)
    columns.mixed = bool(qpic_layout) and bool(triplets)
    return columns


def _cap_per_image(c_img: np.ndarray, masked: np.ndarray, cap: int | None, num_images: int):
    """Positions of the first ``cap`` candidates of each image in stable descending score order,
    or None when no image has more than ``cap``."""
    if cap is None or not len(c_img) or np.bincount(c_img).max() <= cap:
        return None
    order = group_then_descending(c_img, masked)  # per image, descending score, stable
    sorted_img = c_img[order]
    starts = np.searchsorted(sorted_img, np.arange(num_images), side="left")
    return order[np.arange(len(order)) - starts[sorted_img] < cap]


def gather_candidates(gt_test, preds: dict[str, ImagePrediction], corre64: np.ndarray, cats: Categories,
                      opt: HicoOptions, known: np.ndarray | None):
    """Mask, per-image cap (first ``cap`` of a stable descending sort), category lookup.

    Returns image [K], query [K], category [K], masked score float32 [K] per candidate, in image
    order and, within an image, in input order (or score order where the cap had to sort), and
    the query boxes sub [Q, 4], obj [Q, 4] that ``query`` indexes. ``known`` bool [I, 80] keeps
    only candidates whose object class is known in their image (Known-Object setting).
    """
    corre = corre64.astype(np.float32)
    columns = _collect(gt_test, preds, corre, opt)
    if not columns.image_of:
        z, box = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        return z, z, z, np.zeros(0, np.float32), box, box
    c_img = np.repeat(np.asarray(columns.image_of, np.int32), columns.sizes)
    q_sub, q_obj, c_query, labels, verbs, scores = (np.concatenate(c) for c in columns.cols)
    if columns.mixed:  # both layouts in one list: back to image order
        perm = np.argsort(c_img, kind="stable")
        c_img, c_query, labels, verbs, scores = (x[perm] for x in (c_img, c_query, labels, verbs, scores))
    del columns
    masked = scores * corre[verbs, labels]
    del scores
    if opt.drop_invalid:
        valid = corre[verbs, labels] > 0
        c_img, c_query, labels, verbs, masked = _subset(None if valid.all() else valid, c_img, c_query, labels,
                                                        verbs, masked)
    order = _cap_per_image(c_img, masked, opt.max_hois_per_image, len(gt_test))
    c_img, c_query, labels, verbs, masked = _subset(order, c_img, c_query, labels, verbs, masked)
    cat = cats.lookup[labels, verbs]
    keep = cat >= 0
    if known is not None:
        keep &= known[c_img, labels]
    c_img, c_query, cat, masked = _subset(None if keep.all() else keep, c_img, c_query, cat, masked)
    return c_img, c_query, cat, masked, q_sub, q_obj
