"""Config -> detector / criterion (the package edge of ``hqm.models``; docs/architecture.md)."""

from __future__ import annotations

from torch import nn

from hqm.config import HardQueryConfig, LossConfig, ModelConfig
from hqm.models.backbone import Backbone, build_backbone
from hqm.models.criterion import SetCriterionHOI, qpic_weight_dict
from hqm.models.matcher import build_matcher
from hqm.models.qpic import QPIC
from hqm.models.transformer import Transformer, build_transformer

METHODS = ("qpic", "gbs", "amm", "hqm")


def build_backbone_and_transformer(model: ModelConfig) -> tuple[Backbone, Transformer]:
    """The two trunks every detector shares, with fresh weights (optionally an ImageNet backbone)."""
    backbone = build_backbone(model.backbone, model.dilation, model.backbone_weights,
                              norm=model.backbone_norm, out_stage=model.backbone_out_stage,
                              train_stem=model.train_backbone_stem)
    transformer = build_transformer(model.hidden_dim, model.nheads, model.enc_layers, model.dec_layers,
                                    model.dim_feedforward, model.dropout)
    return backbone, transformer


def build_qpic(model: ModelConfig, num_obj_classes: int, num_verb_classes: int) -> QPIC:
    """The plain QPIC detector with fresh (random) weights."""
    backbone, transformer = build_backbone_and_transformer(model)
    return QPIC(backbone, transformer, num_obj_classes, num_verb_classes, model.num_queries, model.aux_loss)


def build_detector(model: ModelConfig, method: str, hard: HardQueryConfig, num_obj_classes: int,
                   num_verb_classes: int, seed: int = 0) -> nn.Module:
    """QPIC for ``qpic``; the HQM detector of ``hqm.models.hard_queries`` otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (one of {', '.join(METHODS)})")
    if method == "qpic":
        return build_qpic(model, num_obj_classes, num_verb_classes)
    from hqm.models.hard_queries import build_hqm_detector

    return build_hqm_detector(model, hard, num_obj_classes, num_verb_classes, seed)


def build_qpic_criterion(loss: LossConfig, num_obj_classes: int, num_verb_classes: int) -> SetCriterionHOI:
    matcher = build_matcher(loss.cost_obj_class, loss.cost_verb_class, loss.cost_bbox, loss.cost_giou)
    weights = qpic_weight_dict(loss.obj_loss_coef, loss.verb_loss_coef, loss.bbox_loss_coef, loss.giou_loss_coef)
    return SetCriterionHOI(num_obj_classes, num_verb_classes, matcher, weights, loss.eos_coef,
                           loss.verb_loss_type, loss.focal_clamp)


def build_criterion(loss: LossConfig, method: str, hard: HardQueryConfig, num_obj_classes: int,
                    num_verb_classes: int) -> nn.Module:
    """Criterion with ``weight_dict``; it returns unweighted terms (see docs/architecture.md)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (one of {', '.join(METHODS)})")
    if method == "qpic":
        return build_qpic_criterion(loss, num_obj_classes, num_verb_classes)
    from hqm.models.hard_queries import build_hqm_criterion

    return build_hqm_criterion(loss, hard, num_obj_classes, num_verb_classes)
