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
    if predictions:
        _check_values(predictions, source, num_obj_labels, num_verbs)


def _check_values(predictions: list[ImagePrediction], source: str, num_obj_labels: int, num_verbs: int) -> None:
    """Boxes, labels, verbs and scores of all images at once; the first bad row is named."""
    sizes = np.array([len(p) for p in predictions])

    for field in ("sub_boxes", "obj_boxes"):
        boxes = np.concatenate([getattr(p, field) for p in predictions])
        bad = ~np.isfinite(boxes).all(1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if (hit := _first_bad_row(bad, sizes, predictions, source)) is not None:
            prefix, row, k = hit
            raise HqmError(f"{prefix}{field}[{row}] = {boxes[k].tolist()} is not finite or has x2<x1 / y2<y1")
    labels = np.concatenate([p.obj_labels for p in predictions])
    if (hit := _first_bad_row((labels < 0) | (labels >= num_obj_labels), sizes, predictions, source)) is not None:
        prefix, row, k = hit
        raise HqmError(f"{prefix}obj_labels[{row}] = {labels[k]} is outside 0..{num_obj_labels - 1}")
    if any(p.verbs is not None for p in predictions):
        verbs = np.concatenate([p.verbs if p.verbs is not None else np.zeros(len(p), np.int64) for p in predictions])
        if (hit := _first_bad_row((verbs < 0) | (verbs >= num_verbs), sizes, predictions, source)) is not None:
            prefix, row, k = hit
            raise HqmError(f"{prefix}verb[{row}] = {verbs[k]} is outside 0..{num_verbs - 1}")
    finite = np.concatenate([np.isfinite(p.verb_scores) if p.verb_scores.ndim == 1
                             else np.isfinite(p.verb_scores).all(1) for p in predictions])
    if (hit := _first_bad_row(~finite, sizes, predictions, source)) is not None:
        prefix, row, _ = hit
        raise HqmError(f"{prefix}score of row {row} is NaN or infinite")


def _first_bad_row(bad: np.ndarray, sizes: np.ndarray, predictions: list[ImagePrediction],
                   source: str) -> tuple[str, int, int] | None:
    """For the first True of ``bad`` (over the concatenated rows of all images): the message prefix
    naming the file and image, the row within the image and the position k in the concatenation."""
    if not bad.any():
        return None
    k = int(np.argmax(bad))
    image = int(np.searchsorted(np.cumsum(sizes), k, side="right"))
    row = k - int(sizes[:image].sum())
    return f"{source}: image {predictions[image].file_name!r}: ", row, k


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


_NUMBER_TYPES = (int, float)  # exact types: JSON true / false are not numbers here
_INT64 = 2**63


def _short(value: object) -> str:
    """``repr`` of an offending JSON value, cut to one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_bad(value: object, shape_tail: tuple[int, ...]) -> tuple[str, str] | None:
    """(index suffix, problem) of the first entry of a nested list that is not a number or has the
    wrong length, e.g. ``("[3][1]", "expected a number, got 'x'")``; None if all are fine."""
    if not shape_tail:
        if type(value) in _NUMBER_TYPES:
            return None
        return "", f"expected a number, got {_short(value)}"
    if not isinstance(value, list) or (shape_tail[0] >= 0 and len(value) != shape_tail[0]):
        size = "a list" if shape_tail[0] < 0 else f"a list of {shape_tail[0]}"
        return "", f"expected {size}, got {_short(value)}"
    for k, item in enumerate(value):
        bad = _first_bad(item, shape_tail[1:])
        if bad is not None:
            return f"[{k}]{bad[0]}", bad[1]
    return None


def _array(where: str, field: str, value: object, dtype, shape_tail: tuple[int, ...]) -> np.ndarray:
    """``value`` (a JSON list, rows of ``shape_tail``) as an array [n, *shape_tail] of ``dtype``.

    The fast path is one ``np.asarray``; on failure, or where NaN may hide a ``null``, the first
    offending entry is located and named (``where.field[k][j]: expected a number, got 'x'``).
    """
    try:  # without a dtype, so that numeric strings ("1") are not converted
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if arr is not None and arr.dtype.kind not in "iuf":  # strings, null, objects, booleans
        arr = None if arr.size else arr.astype(np.float64)
    if arr is not None and arr.shape == (0,):  # an empty list
        arr = arr.reshape((0, *shape_tail))
    if arr is None or arr.shape[1:] != shape_tail or arr.ndim != 1 + len(shape_tail) or (
            arr.dtype.kind == "f" and np.isnan(arr).any()):
        bad = _first_bad(value, (-1, *shape_tail))
        if bad is not None:
            raise HqmError(f"{where}.{field}{bad[0]}: {bad[1]}")
        if arr is None:
            raise HqmError(f"{where}.{field}: not an array of numbers that fit {np.dtype(dtype).name}")
    return arr.astype(np.float64).astype(dtype)  # via float64 (JSON numbers), as the reference does


def _integers(where: str, field: str, value: object) -> np.ndarray:
    """A JSON list of integers (floats with an integral value allowed, as numpy writes labels) -> int64 [n]."""
    values = _array(where, field, [] if value is None else value, np.float64, ())
    if np.any(values != np.round(values)) or np.any(np.abs(values) >= _INT64):
        k = int(np.argmax((values != np.round(values)) | (np.abs(values) >= _INT64)))
        raise HqmError(f"{where}.{field}[{k}]: expected an integer, got {_short(value[k])}")
    return values.astype(np.int64)


def _read_qpic_image(where: str, entry: dict, num_verbs: int) -> ImagePrediction:
    boxes = _array(where, "boxes", entry.get("boxes"), np.float32, (4,))
    labels = _integers(where, "labels", entry.get("labels"))
    scores = _array(where, "verb_scores", entry.get("verb_scores"), np.float32, (num_verbs,))
    sub_ids = _integers(where, "sub_ids", entry.get("sub_ids", []))
    obj_ids = _integers(where, "obj_ids", entry.get("obj_ids", []))
    n = len(scores)
    if len(sub_ids) != n or len(obj_ids) != n or len(labels) != len(boxes):
        raise HqmError(f"{where}: sub_ids / obj_ids / labels do not match verb_scores ({n} rows) and boxes")
    for field, ids in (("sub_ids", sub_ids), ("obj_ids", obj_ids)):
        if n and (ids.min() < 0 or ids.max() >= len(boxes)):
            k = int(np.argmax((ids < 0) | (ids >= len(boxes))))
            raise HqmError(f"{where}.{field}[{k}]: {ids[k]} is outside 0..{len(boxes) - 1}")
    return ImagePrediction(entry["file_name"], boxes[sub_ids], boxes[obj_ids], labels[obj_ids], scores)


_TRIPLET_KEYS = ("sub_box", "obj_box", "obj_label", "verb", "score")


def _triplet_columns(where: str, trips: list) -> dict[str, list]:
    """Per-key columns of a triplets list; a missing key or a non-integer label / verb is named.

    The checks run at C speed (``set(map(type, ...))``); entries are located one by one only on failure.
    """
    try:
        cols = {key: [t[key] for t in trips] for key in _TRIPLET_KEYS}
    except (KeyError, TypeError):
        for k, t in enumerate(trips):
            missing = [key for key in _TRIPLET_KEYS if not isinstance(t, dict) or key not in t]
            if missing:
                raise HqmError(f"{where}.triplets[{k}]: expected an object with {', '.join(_TRIPLET_KEYS)} "
                               f"(missing {', '.join(missing)})") from None
        raise
    for field, allowed, what in (("obj_label", {int}, "an integer"), ("verb", {int}, "an integer"),
                                 ("score", set(_NUMBER_TYPES), "a number")):
        values = cols[field]
        if not set(map(type, values)) <= allowed:
            k = next(k for k, v in enumerate(values) if type(v) not in allowed)
            raise HqmError(f"{where}.triplets[{k}].{field}: expected {what}, got {_short(values[k])}")
    return cols


def _int64(where: str, field: str, values: list[int]) -> np.ndarray:
    """Python ints -> int64 [n]; one outside the int64 range is named."""
    try:
        return np.asarray(values, np.int64).reshape(-1)
    except OverflowError:
        k = next(k for k, v in enumerate(values) if not -_INT64 <= v < _INT64)
        raise HqmError(f"{where}.triplets[{k}].{field}: expected an integer, got {_short(values[k])}") from None


def _triplet_boxes(where: str, field: str, values: list) -> np.ndarray:
    """Boxes of one key of every triplet -> float32 [n, 4]; errors name ``triplets[k].field[j]``."""
    try:
        return _array(where, field, values, np.float32, (4,))
    except HqmError:  # re-locate per triplet for the message
        for k, v in enumerate(values):
            bad = _first_bad(v, (4,))
            if bad is not None:
                raise HqmError(f"{where}.triplets[{k}].{field}{bad[0]}: {bad[1]}") from None
        raise


def _read_triplet_image(where: str, entry: dict) -> ImagePrediction:
    trips = entry.get("triplets")
    if not isinstance(trips, list):
        raise HqmError(f"{where}.triplets: expected a list, got {_short(trips)}")
    cols = _triplet_columns(where, trips)
    return ImagePrediction(
        entry["file_name"], _triplet_boxes(where, "sub_box", cols["sub_box"]),
        _triplet_boxes(where, "obj_box", cols["obj_box"]), _int64(where, "obj_label", cols["obj_label"]),
        np.asarray(cols["score"], np.float64).astype(np.float32).reshape(-1),
        _int64(where, "verb", cols["verb"]),
    )  # fmt: skip


def read_predictions(path: str | Path, num_verbs: int) -> list[ImagePrediction]:
    """Read a ``qpic_postprocess`` or ``triplets`` predictions file (``.json`` or ``.json.gz``).

    Only the structure is checked here; :func:`validate_predictions` checks values and images.
    Errors name the file and the entry, e.g. ``p.json: images[3].triplets[7].score: expected a
    number, got 'x'``.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise HqmError(f"{path}: expected an object with 'format' and an 'images' list")
    layout = data.get("format")
    if layout not in ("qpic_postprocess", "triplets"):
        raise HqmError(f"{path}: format {layout!r} is not 'qpic_postprocess' or 'triplets'")
    if layout == "qpic_postprocess" and data.get("num_verb_classes", num_verbs) != num_verbs:
        raise HqmError(f"{path}: num_verb_classes is {data['num_verb_classes']!r}, the dataset has {num_verbs}")
    out = []
    for i, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise HqmError(f"{path}: images[{i}]: expected an object with a string 'file_name'")
        where = f"{path}: images[{i}]"
        try:
            if layout == "qpic_postprocess":
                out.append(_read_qpic_image(where, entry, num_verbs))
            else:
                out.append(_read_triplet_image(where, entry))
        except HqmError as exc:
            raise HqmError(f"{exc} (image {entry['file_name']!r})") from None
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
