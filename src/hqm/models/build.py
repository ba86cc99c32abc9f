"""Config -> detector / criterion: the one factory of ``hqm.models`` (docs/architecture.md).

Which classes a method needs comes from the method registry (:mod:`hqm.methods`); run facts the
modules must not look up themselves (the seed, the process's distributed rank, the number of
decoder layers) are arguments here. Nothing below this module imports it.
"""

from __future__ import annotations

from torch import nn

from hqm.config import HardQueryConfig, LossConfig, ModelConfig
from hqm.methods import get_method
from hqm.models.backbone import Backbone, build_backbone
from hqm.models.criterion import SetCriterionHOI, qpic_weight_dict
from hqm.models.detr import COCO_NUM_CLASSES, DETR
from hqm.models.hard_queries import HQMCriterion, HQMDetector
from hqm.models.matcher import build_matcher
from hqm.models.qpic import QPIC
from hqm.models.transformer import Transformer, build_transformer


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


def build_detr(model: ModelConfig, num_classes: int = COCO_NUM_CLASSES) -> DETR:
    """DETR with ``model``'s trunk and fresh weights (COCO's 91 class ids + no-object by default)."""
    backbone, transformer = build_backbone_and_transformer(model)
    return DETR(backbone, transformer, num_classes, model.num_queries, model.aux_loss)


def build_hqm_detector(model: ModelConfig, hard: HardQueryConfig, num_obj_classes: int,
                       num_verb_classes: int, seed: int = 0, rank: int = 0) -> HQMDetector:
    """HQM detector with fresh weights; ``seed`` and the process's ``rank`` seed the hard streams."""
    backbone, transformer = build_backbone_and_transformer(model)
    return HQMDetector(backbone, transformer, num_obj_classes, num_verb_classes, model.num_queries,
                       model.aux_loss, hard, seed=seed, rank=rank)


def build_detector(model: ModelConfig, method: str, hard: HardQueryConfig, num_obj_classes: int,
                   num_verb_classes: int, seed: int = 0, rank: int = 0) -> nn.Module:
    """QPIC for a method without hard streams; the HQM detector otherwise.

    ``rank`` is the distributed rank of the calling process (0 outside torchrun): ranks draw
    distinct GBS/AMM random streams (upstream seeds each process with 42 + rank).
    """
    if not get_method(method).streams:
        return build_qpic(model, num_obj_classes, num_verb_classes)
    return build_hqm_detector(model, hard, num_obj_classes, num_verb_classes, seed, rank)


def build_qpic_criterion(loss: LossConfig, num_obj_classes: int, num_verb_classes: int,
                         dec_layers: int = ModelConfig.dec_layers) -> SetCriterionHOI:
    """QPIC's set criterion; its weight table has the final layer and ``dec_layers - 1`` aux layers."""
    matcher = build_matcher(loss.cost_obj_class, loss.cost_verb_class, loss.cost_bbox, loss.cost_giou)
    weights = qpic_weight_dict(loss.obj_loss_coef, loss.verb_loss_coef, loss.bbox_loss_coef,
                               loss.giou_loss_coef, dec_layers)
    return SetCriterionHOI(num_obj_classes, num_verb_classes, matcher, weights, loss.eos_coef,
                           loss.verb_loss_type, loss.focal_clamp)


def build_criterion(loss: LossConfig, method: str, hard: HardQueryConfig, num_obj_classes: int,
                    num_verb_classes: int, dec_layers: int = ModelConfig.dec_layers) -> nn.Module:
    """Criterion with ``weight_dict``; it returns unweighted terms (see docs/architecture.md).

    ``dec_layers``: ``model.dec_layers`` of the detector it supervises; the table holds exactly
    one weight set per decoder layer (the paper's 6 when not given). Outputs with more layers than
    the table are an error, never silently unweighted.
    """
    streams = get_method(method).streams
    base = build_qpic_criterion(loss, num_obj_classes, num_verb_classes, dec_layers)
    if not streams:
        return base
    return HQMCriterion(base, hard.loss_weight, streams)
