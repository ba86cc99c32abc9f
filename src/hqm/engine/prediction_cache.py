"""The last in-training evaluation's predictions, kept beside ``checkpoint_last.pth`` for ``hqm evaluate``.

Training already predicts the whole test split with the weights it then saves as
``checkpoint_last.pth``; ``hqm evaluate`` of that checkpoint would predict it again (on the CPU demo
5 of the 8 s of a HICO-DET evaluation stage). With ``train.keep_last_predictions`` the training writes those
predictions to ``predictions_last.pt`` together with everything that decides them, and the
evaluation stage takes them only when each of those is equal in its own process (checkpoint bytes,
test annotations, dataset root, batch size, ranks, threads, device, bf16); otherwise it predicts as
before. The metrics record which path was taken (``predictions_from``).

File layout (torch, tensors and strings only, loaded with ``weights_only=True``): ``key`` (dict of
str / int / bool), ``file_names`` (list of str), ``counts`` int64 [I], ``sub_boxes`` / ``obj_boxes``
float32 [sum N, 4], ``obj_labels`` int64 [sum N], ``verb_scores`` float32 [sum N, C].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hqm.engine.distributed import DistEnv
from hqm.evaluation.predictions import ImagePrediction
from hqm.io import atomic_write, sha256_file

FILE_FORMAT = "hqm-predictions-1"


def cache_path(checkpoint: str | Path) -> Path:
    """``<run>/predictions_last.pt`` beside ``<run>/checkpoint_last.pth`` (``_last`` / ``_best`` kept)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem.replace("checkpoint", "predictions", 1) + ".pt")


def context_key(checkpoint: str | Path, test_annotations: str | Path, root: str | Path, batch_size: int,
                env: DistEnv, bf16: bool) -> dict:
    """Everything that decides the predicted numbers, as this process would compute them."""
    return {
        "format": FILE_FORMAT,
        "checkpoint_sha256": sha256_file(checkpoint),
        "test_annotations_sha256": sha256_file(test_annotations),
        "root": str(Path(root).resolve()),
        "batch_size": int(batch_size),
        "world_size": int(env.world_size),
        "threads": int(torch.get_num_threads()),
        "device": env.device.type,
        "bf16": bool(bf16),
    }


def save_predictions(path: str | Path, key: dict, predictions: list[ImagePrediction]) -> None:
    """Write ``predictions`` (QPIC layout: ``verbs`` is None) with ``key``, atomically."""
    if any(p.verbs is not None for p in predictions):
        raise ValueError("only QPIC-layout predictions (verb_scores [N, C]) are kept")
    data = {
        "key": dict(key),
        "file_names": [p.file_name for p in predictions],
        "counts": torch.tensor([len(p) for p in predictions], dtype=torch.int64),
        **{name: torch.from_numpy(np.concatenate([getattr(p, name) for p in predictions]))
           for name in ("sub_boxes", "obj_boxes", "obj_labels", "verb_scores")},
    }
    with atomic_write(path, "wb") as handle:
        torch.save(data, handle)


def load_matching(path: str | Path, key: dict) -> list[ImagePrediction] | None:
    """The kept predictions when ``path`` exists and its key equals ``key``; None otherwise."""
    path = Path(path)
    if not path.is_file():
        return None
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.get("key") != key:
        return None
    bounds = np.concatenate([[0], np.cumsum(data["counts"].numpy())])
    arrays = {name: data[name].numpy() for name in ("sub_boxes", "obj_boxes", "obj_labels", "verb_scores")}
    return [ImagePrediction(file_name=name, **{k: v[start:end] for k, v in arrays.items()})
            for name, start, end in zip(data["file_names"], bounds[:-1], bounds[1:], strict=True)]
