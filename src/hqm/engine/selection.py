"""In-training evaluation: when it runs, what it computes, and which epoch is "best".

Training computes only the fast selection metric, the QPIC protocol on the test split (HICO-DET
Default mAP, V-COCO ``mAP_all``), as both upstream codes do; every other protocol is computed by
``hqm evaluate`` from the saved checkpoints. Sources of each choice: docs/protocol.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hqm.config import EvalConfig, TrainConfig
from hqm.data.annotations import read_correct_mat, read_vcoco_annotations
from hqm.data.classes import NUM_VCOCO_VERBS
from hqm.data.layout import dataset_layout
from hqm.errors import HqmError
from hqm.evaluation.run import evaluate_dataset
from hqm.evaluation.vcoco import evaluate_vcoco_qpic

# The metric selection reads, per dataset format: (name, path in the metrics block).
SELECTION_METRIC = {
    "hico": ("hico.qpic.default.mAP", ("hico", "qpic", "default", "mAP")),
    "vcoco": ("vcoco.qpic.mAP_all", ("vcoco", "qpic", "mAP_all")),
}
HQM_EVERY, HQM_DENSE_AFTER = 5, 40  # HQM main.py: evaluate when epoch % 5 == 0 or epoch > 40


def is_eval_epoch(epoch: int, train: TrainConfig) -> bool:
    """Whether training evaluates after 0-based ``epoch`` (the last epoch always is)."""
    if epoch == train.epochs - 1 or train.eval_cadence == "qpic":
        return True
    if train.eval_cadence == "hqm":
        return epoch % HQM_EVERY == 0 or epoch > HQM_DENSE_AFTER
    every = train.eval_every_epochs
    return every > 0 and (epoch + 1) % every == 0


def eval_epochs(train: TrainConfig) -> list[int]:
    """The 0-based epochs after which training evaluates."""
    return [e for e in range(train.epochs) if is_eval_epoch(e, train)]


def selection_eval_config(train: TrainConfig) -> EvalConfig:
    """The QPIC HICO-DET protocol only (V-COCO: QPIC's metric only, see :func:`evaluate_predictions`)."""
    return EvalConfig(hico_protocols=["qpic"], hico_settings=["default"], batch_size=train.eval_batch_size,
                      category_scope=train.eval_category_scope, ap_interpolation=train.eval_ap_interpolation)


def evaluate_predictions(fmt: str, root: str | Path, predictions: list, eval_cfg: EvalConfig) -> dict:
    """The selection block for test-split ``predictions``: ``{"hico": {"qpic": {"default": ...}}}``
    or ``{"vcoco": {"qpic": ...}}`` (V-COCO's official evaluation is left to ``hqm evaluate``)."""
    if fmt == "hico":
        return evaluate_dataset(fmt, root, predictions, eval_cfg, per_category=False)
    if fmt == "vcoco":
        layout = dataset_layout(fmt, root)
        corre = read_correct_mat(layout.correct_mat, NUM_VCOCO_VERBS)
        test = read_vcoco_annotations(layout.annotations("test"))
        return {"vcoco": {"qpic": evaluate_vcoco_qpic(test, predictions, corre, max_hois=eval_cfg.max_hois)}}
    raise HqmError(f"selection: unknown dataset format {fmt!r} (hico, vcoco)")


def selection_score(fmt: str, block: dict | None) -> float | None:
    """The selection metric (a fraction) read from an evaluation block, or None."""
    node: Any = block
    for key in SELECTION_METRIC[fmt][1]:
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, int | float) and math.isfinite(node) else None


def best_epoch(scores: dict[int, float | None]) -> int | None:
    """The 1-based epoch with the highest score (the earliest of ties), None if none was scored."""
    scored = [(s, e) for e, s in scores.items() if s is not None]
    if not scored:
        return None
    return max(scored, key=lambda se: (se[0], -se[1]))[1]


def summary(fmt: str, history: list[dict], select_best: bool) -> dict:
    """The ``selection`` block of train_summary.json (epochs 1-based)."""
    scores = {h["epoch"]: h.get("selection_map") for h in history if h.get("selection_map") is not None}
    best = best_epoch(scores) if select_best else None
    return {
        "metric": SELECTION_METRIC[fmt][0],
        "split": "test",
        "values": {str(e): s for e, s in scores.items()},
        "best_epoch": best,
        "best_value": scores.get(best) if best is not None else None,
        "last_epoch": history[-1]["epoch"] if history else 0,
        "selected_on_test": best is not None,
    }
