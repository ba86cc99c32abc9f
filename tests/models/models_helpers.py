"""Tiny models and synthetic targets shared by the model tests."""

import torch

from hqm.config import HardQueryConfig, LossConfig, ModelConfig
from hqm.models.build import build_criterion, build_detector

TINY = ModelConfig(backbone="resnet18", hidden_dim=32, nheads=4, enc_layers=1, dec_layers=2,
                   dim_feedforward=64, dropout=0.0, num_queries=6)


def tiny_detector(num_obj=80, num_verb=117, **overrides):
    cfg = ModelConfig(**{**TINY.__dict__, **overrides})
    return build_detector(cfg, "qpic", HardQueryConfig(), num_obj, num_verb)


def tiny_criterion(num_obj=80, num_verb=117, dec_layers=TINY.dec_layers, **overrides):
    return build_criterion(LossConfig(**overrides), "qpic", HardQueryConfig(), num_obj, num_verb,
                           dec_layers=dec_layers)


def make_target(obj_labels, verbs, sub_boxes, obj_boxes, num_verb=117):
    verb_labels = torch.zeros(len(obj_labels), num_verb)
    for row, vs in enumerate(verbs):
        verb_labels[row, list(vs)] = 1
    return {"obj_labels": torch.tensor(obj_labels, dtype=torch.int64), "verb_labels": verb_labels,
            "sub_boxes": torch.tensor(sub_boxes, dtype=torch.float32).view(-1, 4),
            "obj_boxes": torch.tensor(obj_boxes, dtype=torch.float32).view(-1, 4)}
