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
                     unlisted_images: str = "error") -> dict:
    """Evaluate test-split predictions of the dataset at ``root`` (layouts in docs/architecture.md).

    Returns the metrics block of ``metrics.json``: ``{"hico": {protocol: {setting: {...}}}}`` or
    ``{"vcoco": {"official": {...}, "qpic": {...}}}``. The QPIC HICO-DET protocol has only the
    Default setting; ``per_category=False`` drops the per-category rows. ``unlisted_images``
    ("error" | "no_gt"): HICO-DET predictions for images the test file does not list.
    """
    cfg = eval_cfg or EvalConfig()
    root = Path(root)
    if meta_format == "hico":
        gt = load_hico_ground_truth(root / "annotations")
        block: dict = {}
        for protocol in cfg.hico_protocols:
            for setting in cfg.hico_settings:
                if protocol == "qpic" and setting != "default":
                    continue
                options = {"unlisted_images": unlisted_images}
                if protocol == "qpic":
                    options["max_hois_per_image"] = cfg.max_hois
                result = evaluate_hico(gt, predictions, protocol, setting, **options)
                if not per_category:
                    result.pop("per_category")
                block.setdefault(protocol, {})[setting] = result
        return {"hico": block}
    if meta_format == "vcoco":
        corre = read_correct_mat(root / "annotations" / "corre_vcoco.npy", NUM_VCOCO_VERBS)
        test = read_vcoco_annotations(root / "annotations" / "test_vcoco.json")
        return {"vcoco": {
            "official": evaluate_vcoco_official(root / "official", predictions, corre),
            "qpic": evaluate_vcoco_qpic(test, predictions, corre, max_hois=cfg.max_hois),
        }}  # fmt: skip
    raise HqmError(f"evaluate_dataset: unknown dataset format {meta_format!r} (hico, vcoco)")


def num_verb_classes(meta_format: str) -> int:
    """Verb classes of a dataset format (117 HICO-DET, 29 V-COCO)."""
    if meta_format not in ("hico", "vcoco"):
        raise HqmError(f"unknown dataset format {meta_format!r} (hico, vcoco)")
    return NUM_HICO_VERBS if meta_format == "hico" else NUM_VCOCO_VERBS
