"""The single evaluation entry point used by the engine and ``hqm eval-predictions``."""

from __future__ import annotations

from pathlib import Path

from hqm.config import EvalConfig
from hqm.data.annotations import read_correct_mat, read_vcoco_annotations
from hqm.data.classes import NUM_HICO_VERBS, NUM_VCOCO_VERBS
from hqm.errors import HqmError
from hqm.evaluation.hico import evaluate_hico, load_hico_ground_truth
from hqm.evaluation.predictions import ImagePrediction
from hqm.evaluation.vcoco import evaluate_vcoco_official, evaluate_vcoco_qpic


def evaluate_dataset(meta_format: str, root: str | Path, predictions: list[ImagePrediction],
                     eval_cfg: EvalConfig | None = None, per_category: bool = True,
                     unlisted_images: str = "error", source: str = "predictions") -> dict:
    """Evaluate test-split predictions of the dataset at ``root`` (layouts in docs/architecture.md).

    Returns the metrics block of ``metrics.json``: ``{"hico": {protocol: {setting: {...}}}}`` or
    ``{"vcoco": {"official": {...}, "qpic": {...}}}``. The QPIC HICO-DET protocol has only the
    Default setting; ``per_category=False`` drops the per-category rows. ``unlisted_images``
    ("error" | "no_gt"): HICO-DET predictions for images the test file does not list. Every
    HICO-DET result records ``category_scope`` (``eval_cfg.category_scope``; docs/evaluation.md §1.10).
    ``source`` names the predictions (a file) in error messages.
    """
    cfg = eval_cfg or EvalConfig()
    if isinstance(cfg.max_hois, bool) or not isinstance(cfg.max_hois, int) or cfg.max_hois < 1:
        raise HqmError(f"evaluation.max_hois: must be a positive integer, got {cfg.max_hois!r}")
    root = Path(root)
    if meta_format == "hico":
        return {"hico": _evaluate_hico_block(root, predictions, cfg, per_category, unlisted_images, source)}
    if meta_format == "vcoco":
        corre = read_correct_mat(root / "annotations" / "corre_vcoco.npy", NUM_VCOCO_VERBS)
        test = read_vcoco_annotations(root / "annotations" / "test_vcoco.json")
        return {"vcoco": {
            "official": evaluate_vcoco_official(root / "official", predictions, corre, source),
            "qpic": evaluate_vcoco_qpic(test, predictions, corre, max_hois=cfg.max_hois, source=source),
        }}  # fmt: skip
    raise HqmError(f"evaluate_dataset: unknown dataset format {meta_format!r} (hico, vcoco)")


def _evaluate_hico_block(root: Path, predictions: list[ImagePrediction], cfg: EvalConfig, per_category: bool,
                         unlisted_images: str, source: str) -> dict:
    """``{protocol: {setting: result}}`` for the protocols and settings ``cfg`` asks for."""
    gt = load_hico_ground_truth(root / "annotations")
    block: dict = {}
    for protocol in cfg.hico_protocols:
        for setting in cfg.hico_settings:
            if protocol == "qpic" and setting != "default":
                continue
            options = {"unlisted_images": unlisted_images, "category_scope": cfg.category_scope,
                       "ap_interpolation": cfg.ap_interpolation}
            if protocol == "qpic":
                options["max_hois_per_image"] = cfg.max_hois
            result = evaluate_hico(gt, predictions, protocol, setting, source=source, **options)
            if not per_category:
                result.pop("per_category")
            block.setdefault(protocol, {})[setting] = result
    return block


def num_verb_classes(meta_format: str) -> int:
    """Verb classes of a dataset format (117 HICO-DET, 29 V-COCO)."""
    if meta_format not in ("hico", "vcoco"):
        raise HqmError(f"unknown dataset format {meta_format!r} (hico, vcoco)")
    return NUM_HICO_VERBS if meta_format == "hico" else NUM_VCOCO_VERBS
