"""Mapping <-> config dataclass conversion with type, range and completeness checks.

The dataclasses live in :mod:`hqm.config`; this module only knows them by class name, so it has
no import of them. Every error is one :class:`~hqm.errors.HqmError` line
``<source>: <key.path>: <problem>``, e.g. ``run_config.yaml: train.epochs: must be >= 1, got -1``.

Completeness: a key the mapping leaves out takes the dataclass default *only* where the caller
allows it. :func:`from_dict` records the dotted paths of the keys it filled in (see
:func:`missing_keys`); ``complete=True`` turns the first of them into an error instead.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml

from hqm.errors import HqmError
from hqm.methods import get_method

# Keys that may be left out of a complete file: per-variant overrides and optional artefact fields.
OPTIONAL_KEYS: dict[str, frozenset[str]] = {
    "VariantConfig": frozenset({"train", "hard_queries", "model"}),
    "ArtefactConfig": frozenset({"sources", "url", "gdrive_id", "extract_to", "strip_top_folder", "size", "content", "manual"}),
}

# A rule: (key it reports, predicate on the built object, what the value must be).
Rule = tuple[str, Callable[[Any], bool], str]


def _at_least(key: str, low: float) -> Rule:
    return key, lambda c: getattr(c, key) >= low, f"must be >= {low}"


def _above(key: str, low: float) -> Rule:
    return key, lambda c: getattr(c, key) > low, f"must be > {low}"


def _fraction(key: str, closed: bool = True) -> Rule:
    if closed:
        return key, lambda c: 0 <= getattr(c, key) <= 1, "must be in [0, 1]"
    return key, lambda c: 0 <= getattr(c, key) < 1, "must be in [0, 1)"


def _sizes(key: str) -> Rule:
    return key, lambda c: len(getattr(c, key)) > 0 and min(getattr(c, key)) >= 1, \
        "must be a non-empty list of sizes >= 1"


def _method(key: str) -> Rule:
    return key, lambda c: get_method(getattr(c, key)) is not None, "must name a registered method"


RULES: dict[str, tuple[Rule, ...]] = {
    "ModelConfig": (
        _at_least("hidden_dim", 2),
        ("hidden_dim", lambda c: c.hidden_dim % 2 == 0, "must be even (sine position encoding)"),
        _at_least("nheads", 1),
        ("nheads", lambda c: c.hidden_dim % c.nheads == 0, "must divide model.hidden_dim"),
        _at_least("enc_layers", 0), _at_least("dec_layers", 1), _at_least("dim_feedforward", 1),
        _fraction("dropout", closed=False), _at_least("num_queries", 1),
        ("dilation", lambda c: not c.dilation or c.backbone not in ("resnet10", "resnet18", "resnet34"),
         "needs a bottleneck ResNet (resnet50 / resnet101), as in torchvision"),
    ),
    "LossConfig": tuple(
        _at_least(k, 0) for k in ("cost_obj_class", "cost_verb_class", "cost_bbox", "cost_giou", "obj_loss_coef",
                                  "verb_loss_coef", "bbox_loss_coef", "giou_loss_coef", "eos_coef")
    ),
    "GBSConfig": (
        _fraction("iou_low"), _fraction("iou_high"),
        ("iou_high", lambda c: c.iou_high > c.iou_low, "must be > hard_queries.gbs.iou_low"),
        _above("step", 0), _at_least("steps", 1), _fraction("accept_ratio"), _at_least("max_tries", 1),
    ),
    "AMMConfig": (_at_least("top_k", 1), _fraction("mask_ratio", closed=False)),
    "HardQueryConfig": (_at_least("loss_weight", 0),),
    "AugmentConfig": (
        _sizes("scales"), _at_least("max_size", 1), _sizes("crop_resize_scales"), _at_least("crop_min_size", 1),
        ("crop_max_size", lambda c: c.crop_max_size >= c.crop_min_size, "must be >= augment.crop_min_size"),
        _at_least("test_scale", 1), _fraction("flip_prob"), _at_least("color_jitter", 0), _at_least("max_boxes", 1),
    ),
    "TrainConfig": (
        _at_least("epochs", 1), _at_least("lr_drop", 1), _above("lr", 0), _at_least("lr_backbone", 0),
        _at_least("weight_decay", 0), _at_least("clip_max_norm", 0), _at_least("global_batch_size", 1),
        _at_least("micro_batch_size", 1),
        ("global_batch_size", lambda c: c.global_batch_size % c.micro_batch_size == 0,
         "must be a multiple of train.micro_batch_size"),
        _at_least("num_workers", 0), _at_least("threads_per_rank", 0), _at_least("checkpoint_every_iters", 0),
        _at_least("eval_every_epochs", 0), _at_least("eval_batch_size", 1), _at_least("log_every_iters", 1),
        _at_least("warmup_epochs", 0), _fraction("min_lr_ratio"), _fraction("ema_decay", closed=False),
    ),
    "EvalConfig": (_at_least("max_hois", 1), _at_least("batch_size", 1)),
    "PretrainConfig": (
        _at_least("epochs", 1), _at_least("batch_size", 1), _above("lr", 0), _at_least("lr_backbone", 0),
        _at_least("weight_decay", 0), _at_least("clip_max_norm", 0), _at_least("lr_drop", 1),
        _at_least("warmup_epochs", 0), _fraction("min_lr_ratio"), _at_least("threads", 0),
        *(_at_least(k, 0) for k in ("cost_class", "cost_bbox", "cost_giou", "ce_loss_coef", "bbox_loss_coef",
                                    "giou_loss_coef", "eos_coef")),
    ),
    "SyntheticConfig": (
        _at_least("num_train", 1), _at_least("num_test", 1), _at_least("image_size", 1),
        _at_least("max_people", 1), _at_least("max_objects", 1), _at_least("rare_max_train", 0),
    ),
    "ExperimentConfig": (_at_least("gpus_per_run", 0), _at_least("cpu_procs_per_run", 1)),
    "VariantConfig": (_method("method"),),
    "RunConfig": (_method("method"),),
}


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def check_rules(obj: Any, where: str) -> None:
    """Apply the range rules of ``obj``'s class; the first failure is an error naming the key."""
    for key, ok, need in RULES.get(type(obj).__name__, ()):
        try:
            good = ok(obj)
        except HqmError as exc:  # an unknown method: the registry's own message
            raise HqmError(f"{_join(where, key)}: {str(exc).split(': ', 1)[-1]}") from None
        if not good:
            raise HqmError(f"{_join(where, key)}: {need}, got {getattr(obj, key)!r}")


def _check_union(value: Any, args: tuple, where: str, missing: list[str]) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return check_value(value, arg, where, missing)
        except HqmError as exc:
            errors.append(str(exc))
    raise HqmError(errors[0] if errors else f"{where}: invalid value {value!r}")


def _check_container(value: Any, origin: Any, args: tuple, where: str, missing: list[str]) -> Any:
    if origin is list:
        if not isinstance(value, list):
            raise HqmError(f"{where}: expected a list, got {type(value).__name__}")
        return [check_value(v, args[0], f"{where}[{i}]", missing) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise HqmError(f"{where}: expected a mapping, got {type(value).__name__}")
    return {str(k): check_value(v, args[1], f"{where}.{k}", missing) for k, v in value.items()}


SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def check_value(value: Any, tp: Any, where: str, missing: list[str]) -> Any:
    """``value`` checked against type ``tp`` (dataclass, Union, Literal, list, dict, scalar)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise HqmError(f"{where}: expected a mapping, got {type(value).__name__}")
        return build(tp, value, where, missing)
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, args, where, missing)
    if origin is Literal:
        if value not in args:
            raise HqmError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, dict):
        return _check_container(value, origin, args, where, missing)
    if tp in SCALARS:
        ok, what = SCALARS[tp]
        if not ok(value):
            raise HqmError(f"{where}: expected {what}, got {value!r}")
        return float(value) if tp is float else value
    raise TypeError(f"unsupported config type {tp} at {where}")


def build(cls: type, data: dict, where: str, missing: list[str]) -> Any:
    """Dataclass ``cls`` from ``data``: unknown keys are errors, left-out keys go to ``missing``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HqmError(f"{where or 'top level'}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(fields)})")
    optional = OPTIONAL_KEYS.get(cls.__name__, frozenset())
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = check_value(data[name], hints[name], _join(where, name), missing)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise HqmError(f"{_join(where, name)}: missing required key")
        elif name not in optional:
            missing.append(_join(where, name))
    obj = cls(**kwargs)
    check_rules(obj, where)
    return obj


def from_dict(cls: type, data: dict, source: str = "<config>", prefix: str = "", complete: bool = False) -> Any:
    """Build dataclass ``cls`` from ``data``; errors read ``<source>: <prefix.key.path>: <problem>``.

    ``complete``: every key must be written out (a left-out key is an error, not a default).
    Otherwise the filled-in keys are kept for :func:`missing_keys`.
    """
    missing: list[str] = []
    try:
        obj = build(cls, data or {}, prefix, missing)
        if complete and missing:
            raise HqmError(f"{missing[0]}: missing (every entry must be written out; there is no built-in default)")
    except HqmError as exc:
        raise HqmError(f"{source}: {exc}") from None
    object.__setattr__(obj, "_hqm_missing", tuple(missing))
    object.__setattr__(obj, "_hqm_source", source)
    return obj


def missing_keys(obj: Any) -> tuple[str, ...]:
    """The dotted keys :func:`from_dict` filled in with defaults when it built ``obj`` (else ())."""
    return getattr(obj, "_hqm_missing", ())


def source_of(obj: Any, default: str = "params") -> str:
    """The file (or label) :func:`from_dict` built ``obj`` from."""
    return getattr(obj, "_hqm_source", default)


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML/JSON-ready) form of a config object."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else copy.deepcopy(obj)


def load_yaml(path: str | Path) -> dict:
    """A YAML file whose top level is a mapping; a missing or malformed file is one error line."""
    path = Path(path)
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise HqmError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise HqmError(f"{path}: expected a mapping at the top level")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; ``override`` wins, lists are replaced, not concatenated."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
