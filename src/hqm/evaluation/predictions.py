"""Predictions in memory and on disk (evaluation.md §1.6; fixture READMEs for the two layouts).

In memory a prediction is one :class:`ImagePrediction` per image, in QPIC's post-process layout (one
row per query, a score per verb class). The flat ``triplets`` layout (one row per candidate) is the
same object with ``verbs`` set. Files are JSON or gzip-compressed JSON (``.json.gz``).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hqm.errors import HqmError
from hqm.io import atomic_write, read_json


@dataclass
class ImagePrediction:
    """Predictions of one image (absolute xyxy pixels of the original image).

    sub_boxes, obj_boxes: float32 [N, 4]; obj_labels: int64 [N];
    verb_scores: float32 [N, C] (QPIC layout: candidate (q, v) has score verb_scores[q, v]) or,
    when ``verbs`` (int64 [N]) is given, float32 [N] (triplets layout: row n is one candidate).
    """

    file_name: str
    sub_boxes: np.ndarray
    obj_boxes: np.ndarray
    obj_labels: np.ndarray
    verb_scores: np.ndarray
    verbs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.obj_labels)

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row [K], verb [K], score float32 [K]) in query-major, verb-minor order."""
        if self.verbs is not None:
            return np.arange(len(self.verbs)), self.verbs, self.verb_scores
        n, c = self.verb_scores.shape
        return np.repeat(np.arange(n), c), np.tile(np.arange(c), n), self.verb_scores.reshape(-1)


def empty_prediction(file_name: str, num_verbs: int) -> ImagePrediction:
    """An image without any candidate (QPIC layout, zero queries)."""
    return ImagePrediction(file_name, np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32),
                           np.zeros(0, np.int64), np.zeros((0, num_verbs), np.float32))


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def validate_predictions(predictions: list[ImagePrediction], source: str, known_images: set[str] | None,
                         num_obj_labels: int, num_verbs: int) -> None:
    """Raise HqmError naming the image and field for unknown images, duplicates, NaN / inf,
    boxes with x2 < x1 or y2 < y1, and indices outside the class lists.

    num_obj_labels: allowed object labels are 0..num_obj_labels-1 (81 for V-COCO: 80 = missing).
    Shapes are checked per image; values once over the concatenation of all images.
    """
    seen: set[str] = set()
    for pred in predictions:
        name = pred.file_name
        if known_images is not None and name not in known_images:
            raise HqmError(f"{source}: image {name!r}: not an image of the ground truth")
        if name in seen:
            raise HqmError(f"{source}: image {name!r}: listed twice")
        seen.add(name)
        n = len(pred.obj_labels)
        triplets = pred.verbs is not None
        if (pred.sub_boxes.shape != (n, 4) or pred.obj_boxes.shape != (n, 4)
                or pred.verb_scores.shape != ((n,) if triplets else (n, num_verbs))
                or (triplets and pred.verbs.shape != (n,))):  # fmt: skip
            shapes = {f: getattr(getattr(pred, f), "shape", None) for f in ("sub_boxes", "obj_boxes", "verb_scores", "verbs")}
            raise HqmError(f"{source}: image {name!r}: inconsistent shapes {shapes} for {n} rows and {num_verbs} verbs")
    if not predictions:
        return
    sizes = np.array([len(p) for p in predictions])
    row_image = np.repeat(np.arange(len(predictions)), sizes)

    def fail(bad: np.ndarray, message) -> None:
        if bad.any():
            k = int(np.argmax(bad))
            image = int(row_image[k])
            row = k - int(sizes[:image].sum())
            raise HqmError(f"{source}: image {predictions[image].file_name!r}: {message(row, k)}")

    for field in ("sub_boxes", "obj_boxes"):
        boxes = np.concatenate([getattr(p, field) for p in predictions])
        bad = ~np.isfinite(boxes).all(1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        fail(bad, lambda r, k, f=field, b=boxes: f"{f}[{r}] = {b[k].tolist()} is not finite or has x2<x1 / y2<y1")
    labels = np.concatenate([p.obj_labels for p in predictions])
    fail((labels < 0) | (labels >= num_obj_labels),
         lambda r, k: f"obj_labels[{r}] = {labels[k]} is outside 0..{num_obj_labels - 1}")
    trip = [p for p in predictions if p.verbs is not None]
    if trip:
        verbs = np.concatenate([p.verbs if p.verbs is not None else np.zeros(len(p), np.int64) for p in predictions])
        fail((verbs < 0) | (verbs >= num_verbs), lambda r, k: f"verb[{r}] = {verbs[k]} is outside 0..{num_verbs - 1}")
    finite = np.concatenate([np.isfinite(p.verb_scores) if p.verb_scores.ndim == 1
                             else np.isfinite(p.verb_scores).all(1) for p in predictions])
    fail(~finite, lambda r, k: f"score of row {r} is NaN or infinite")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _array(where: str, field: str, value: object, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64 if dtype == np.float32 else dtype)
    except (TypeError, ValueError):
        raise HqmError(f"{where}: {field} is not a numeric array") from None
    if arr.size == 0:
        arr = arr.reshape((0, *shape_tail))
    if arr.shape[1:] != shape_tail:
        raise HqmError(f"{where}: {field} has shape {arr.shape}, expected (n, {', '.join(map(str, shape_tail))})")
    return arr.astype(dtype)  # float64 -> float32, as the reference does


def _read_qpic_image(where: str, entry: dict, num_verbs: int) -> ImagePrediction:
    boxes = _array(where, "boxes", entry.get("boxes"), np.float32, (4,))
    labels = np.asarray(entry.get("labels"), dtype=np.float64).reshape(-1)
    scores = _array(where, "verb_scores", entry.get("verb_scores"), np.float32, (num_verbs,))
    sub_ids = np.asarray(entry.get("sub_ids", []), dtype=np.int64).reshape(-1)
    obj_ids = np.asarray(entry.get("obj_ids", []), dtype=np.int64).reshape(-1)
    n = len(scores)
    if len(sub_ids) != n or len(obj_ids) != n or len(labels) != len(boxes):
        raise HqmError(f"{where}: sub_ids / obj_ids / labels do not match verb_scores ({n} rows) and boxes")
    for field, ids in (("sub_ids", sub_ids), ("obj_ids", obj_ids)):
        if n and (ids.min() < 0 or ids.max() >= len(boxes)):
            raise HqmError(f"{where}: {field} index outside 0..{len(boxes) - 1}")
    if np.any(labels != np.round(labels)):
        raise HqmError(f"{where}: labels must be integers")
    return ImagePrediction(entry["file_name"], boxes[sub_ids], boxes[obj_ids],
                           labels.astype(np.int64)[obj_ids], scores)


def _read_triplet_image(where: str, entry: dict) -> ImagePrediction:
    trips = entry.get("triplets")
    if not isinstance(trips, list):
        raise HqmError(f"{where}: 'triplets' must be a list")
    try:
        sub = [t["sub_box"] for t in trips]
        obj = [t["obj_box"] for t in trips]
        lab = [t["obj_label"] for t in trips]
        verb = [t["verb"] for t in trips]
        score = [t["score"] for t in trips]
    except (KeyError, TypeError) as exc:
        raise HqmError(f"{where}: every triplet needs sub_box, obj_box, obj_label, verb, score ({exc})") from None
    for field, values in (("obj_label", lab), ("verb", verb)):
        for k, v in enumerate(values):
            if not isinstance(v, int) or isinstance(v, bool):
                raise HqmError(f"{where}: triplets[{k}].{field} = {v!r} is not an integer")
    return ImagePrediction(
        entry["file_name"], _array(where, "sub_box", sub, np.float32, (4,)),
        _array(where, "obj_box", obj, np.float32, (4,)), np.asarray(lab, np.int64).reshape(-1),
        _array(where, "score", score, np.float32, ()).reshape(-1), np.asarray(verb, np.int64).reshape(-1),
    )  # fmt: skip


def read_predictions(path: str | Path, num_verbs: int) -> list[ImagePrediction]:
    """Read a ``qpic_postprocess`` or ``triplets`` predictions file (``.json`` or ``.json.gz``).

    Only the structure is checked here; :func:`validate_predictions` checks values and images.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise HqmError(f"{path}: expected an object with 'format' and an 'images' list")
    layout = data.get("format")
    if layout not in ("qpic_postprocess", "triplets"):
        raise HqmError(f"{path}: format {layout!r} is not 'qpic_postprocess' or 'triplets'")
    if layout == "qpic_postprocess" and data.get("num_verb_classes", num_verbs) != num_verbs:
        raise HqmError(f"{path}: num_verb_classes is {data['num_verb_classes']}, the dataset has {num_verbs}")
    out = []
    for i, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise HqmError(f"{path}: images[{i}]: expected an object with a string 'file_name'")
        where = f"{path}: image {entry['file_name']!r}"
        if layout == "qpic_postprocess":
            out.append(_read_qpic_image(where, entry, num_verbs))
        else:
            out.append(_read_triplet_image(where, entry))
    return out


def predictions_to_json(predictions: list[ImagePrediction]) -> dict:
    """JSON-ready document; ``triplets`` layout if any image has ``verbs``, else ``qpic_postprocess``."""
    if any(p.verbs is not None for p in predictions):
        images = []
        for p in predictions:
            rows, verbs, scores = p.candidates()
            images.append({"file_name": p.file_name, "triplets": [
                {"sub_box": p.sub_boxes[r].tolist(), "obj_box": p.obj_boxes[r].tolist(),
                 "obj_label": int(p.obj_labels[r]), "verb": int(v), "score": float(s)}
                for r, v, s in zip(rows.tolist(), verbs.tolist(), scores.tolist())]})
        return {"format": "triplets", "images": images}
    num_verbs = predictions[0].verb_scores.shape[1] if predictions else 0
    images = []
    for p in predictions:
        n = len(p)
        images.append({
            "file_name": p.file_name,
            "boxes": np.concatenate([p.sub_boxes, p.obj_boxes]).tolist(),
            "labels": [0] * n + p.obj_labels.tolist(),
            "verb_scores": p.verb_scores.tolist(),
            "sub_ids": list(range(n)), "obj_ids": list(range(n, 2 * n)),
        })  # fmt: skip
    return {"format": "qpic_postprocess", "num_verb_classes": num_verbs, "images": images}


def write_predictions(path: str | Path, predictions: list[ImagePrediction]) -> None:
    """Write predictions atomically as JSON (gzip-compressed if the name ends in ``.gz``)."""
    path = Path(path)
    text = json.dumps(predictions_to_json(predictions), allow_nan=False)
    if path.suffix == ".gz":
        with atomic_write(path, "wb") as handle:
            handle.write(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(text)
