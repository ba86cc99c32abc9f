"""``params.yaml`` -> typed, validated configuration objects.

``params.yaml`` is the single source of truth. Its top-level sections map onto the dataclasses
below; an unknown key or a value of the wrong type is an error naming the file and the key path.
A training run is described by a :class:`RunConfig`, resolved once from the params for one
(dataset, variant, seed); the run writes it beside its results (``config.yaml``) and every stage
reads that resolved file, never ``params.yaml`` again.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hqm.errors import HqmError
from hqm.io import atomic_write

VARIANTS = ("qpic", "gbs", "amm", "hqm")


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """The QPIC detector (method.md §1); defaults are the paper's R50 model."""

    backbone: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = "resnet50"
    dilation: bool = False
    hidden_dim: int = 256
    nheads: int = 8
    enc_layers: int = 6
    dec_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    num_queries: int = 100
    aux_loss: bool = True
    # Converted initial weights (hqm convert-weights output); None = random initialisation.
    init_weights: str | None = None
    # torchvision-format ImageNet ResNet weights for the backbone alone; None = random (no network).
    backbone_weights: str | None = None
    # Laptop-scale options for training from scratch (the paper: frozen norms, C5 = layer4):
    # "batch" trains ordinary BatchNorm and every backbone stage; an earlier output stage gives a
    # finer feature map (stride 8 / 16) on small images.
    backbone_norm: Literal["frozen", "batch"] = "frozen"
    backbone_out_stage: Literal["layer2", "layer3", "layer4"] = "layer4"
    train_backbone_stem: bool = False  # conv1/bn1/layer1 stay frozen, as in the paper


@dataclass
class LossConfig:
    """Matcher costs and loss weights (method.md §3-4). The training values, not argparse defaults."""

    cost_obj_class: float = 1.0
    cost_verb_class: float = 1.0
    cost_bbox: float = 2.5
    cost_giou: float = 1.0
    obj_loss_coef: float = 1.0
    verb_loss_coef: float = 1.0
    bbox_loss_coef: float = 2.5
    giou_loss_coef: float = 1.0
    eos_coef: float = 0.1
    verb_loss_type: Literal["focal", "bce"] = "focal"
    focal_clamp: bool = False  # the reference does not clamp p in the focal verb loss


@dataclass
class GBSConfig:
    """Ground-truth box shifting (method.md §8.2); defaults as coded upstream."""

    iou_low: float = 0.4
    iou_high: float = 0.6
    step: float = 0.04
    steps: int = 10  # integers drawn from {-steps, ..., steps - 1}
    accept_ratio: float = 0.7
    max_tries: int = 40
    acceptance_scope: Literal["batch", "image", "box"] = "batch"


@dataclass
class AMMConfig:
    """Attention map masking (method.md §8.3); defaults as coded upstream."""

    top_k: int = 100
    mask_ratio: float = 0.4
    rank_sharing: Literal["layer", "row"] = "layer"  # "row" = per-row ranks (paper reading)
    apply_decoder_norm: bool = False  # upstream skips decoder.norm on AMM predictions
    queries: Literal["all", "positives"] = "all"


@dataclass
class HardQueryConfig:
    """Which hard-positive stream(s) a variant uses and how (method.md §8)."""

    gbs: GBSConfig = field(default_factory=GBSConfig)
    amm: AMMConfig = field(default_factory=AMMConfig)
    alternation: Literal["strict", "random"] = "strict"
    loss_weight: float = 0.8


@dataclass
class AugmentConfig:
    """QPIC's augmentations (method.md §2.3); all scales configurable for small images."""

    scales: list[int] = field(default_factory=lambda: list(range(480, 801, 32)))
    max_size: int = 1333
    crop_resize_scales: list[int] = field(default_factory=lambda: [400, 500, 600])
    crop_min_size: int = 384
    crop_max_size: int = 600
    test_scale: int = 800
    flip_prob: float = 0.5
    color_jitter: float = 0.4
    max_boxes: int = 100


@dataclass
class TrainConfig:
    """Optimisation and engine settings (method.md §5)."""

    epochs: int = 150
    lr_drop: int = 100
    lr: float = 1e-4
    lr_backbone: float = 1e-5
    weight_decay: float = 1e-4
    clip_max_norm: float = 0.1
    global_batch_size: int = 16
    micro_batch_size: int = 2  # images per forward pass; accumulation fills the global batch
    num_workers: int = 2
    threads_per_rank: int = 0  # 0 = all cores / ranks
    bf16: bool = False  # autocast on GPU only
    checkpoint_every_iters: int = 500
    eval_every_epochs: int = 0  # 0 = only after the last epoch
    select_best: bool = False  # a "best" epoch is then labelled as selected on the test set
    find_unused_parameters: bool = False  # forced on for HQM variants (GBS encoder unused in AMM steps)


@dataclass
class EvalConfig:
    """Which protocols to compute after training (evaluation.md)."""

    hico_protocols: list[Literal["qpic", "official"]] = field(default_factory=lambda: ["qpic", "official"])
    hico_settings: list[Literal["default", "known_object"]] = field(
        default_factory=lambda: ["default", "known_object"]
    )
    max_hois: int = 100
    batch_size: int = 4


@dataclass
class DatasetConfig:
    """One dataset: its annotation format and root folder (layout in evaluation.md)."""

    format: Literal["hico", "vcoco"]
    root: str
    source: Literal["synthetic", "hico_det", "vcoco"] = "synthetic"
    dataset_kw: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyntheticConfig:
    """The embedded synthetic HOI dataset (hqm make-synthetic)."""

    seed: int = 0
    num_train: int = 400
    num_test: int = 100
    image_size: int = 128
    max_people: int = 2
    max_objects: int = 3
    rare_max_train: int = 6  # training images of each rare (pose, object) combination
    layout: Literal["slots", "random"] = "slots"  # people side by side on the ground, or anywhere


@dataclass
class ArtefactConfig:
    """One external file: where to get it, how to verify it, where it lands."""

    url: str
    # Full digest or a >= 8-digit prefix. None = nobody has published one: the first download is
    # pinned in <data_dir>/checksums.json and every later use is verified against that pin.
    sha256: str | None
    path: str  # destination relative to the data dir
    gdrive_id: str | None = None
    extract_to: str | None = None  # unpack archives here (relative to the data dir)
    size: int | None = None


@dataclass
class VariantConfig:
    """A training variant: which method plus its own overrides of train/hard-query settings."""

    method: Literal["qpic", "gbs", "amm", "hqm"]
    train: dict[str, Any] = field(default_factory=dict)
    hard_queries: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    """What ``rule all`` / ``dvc repro`` builds."""

    datasets: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    seeds: list[int] = field(default_factory=lambda: [42])
    data_dir: str = "data"
    runs_dir: str = "runs"
    results_dir: str = "results"
    backbone_weights: str = "detr_r50"  # artefact name of the DETR checkpoint to convert, or none
    gpus_per_run: int = 0  # GPUs (= torchrun processes) per training job; 0 = CPU
    cpu_procs_per_run: int = 1  # torchrun processes per training job on CPU (gloo)
    nodes_per_run: int = 1  # nodes one training spans (SLURM); gpus_per_run / nodes_per_run GPUs each


@dataclass
class Params:
    """The whole of ``params.yaml``."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    variants: dict[str, VariantConfig] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    hard_queries: HardQueryConfig = field(default_factory=HardQueryConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    artefacts: dict[str, ArtefactConfig] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything one training run needs, resolved for one (dataset, variant, seed)."""

    dataset_name: str
    dataset: DatasetConfig
    variant: str
    method: Literal["qpic", "gbs", "amm", "hqm"]
    seed: int
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    hard_queries: HardQueryConfig = field(default_factory=HardQueryConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)


# ---------------------------------------------------------------------------------------------
# Generic dict <-> dataclass with validation
# ---------------------------------------------------------------------------------------------


def _check(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise HqmError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check(value, arg, where)
            except HqmError as exc:
                errors.append(str(exc))
        raise HqmError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise HqmError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise HqmError(f"{where}: expected a list, got {type(value).__name__}")
        return [_check(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise HqmError(f"{where}: expected a mapping, got {type(value).__name__}")
        return {str(k): _check(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HqmError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HqmError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise HqmError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise HqmError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp} at {where}")


def _build(cls: type, data: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise HqmError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check(data[name], hints[name], f"{where}.{name}" if where else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise HqmError(f"{where}: missing required key '{name}'")
    return cls(**kwargs)


def from_dict(cls: type, data: dict, source: str = "<config>") -> Any:
    """Build dataclass ``cls`` from ``data``; errors read ``<source>: <key.path>: <problem>``."""
    try:
        return _build(cls, data or {}, "")
    except HqmError as exc:
        raise HqmError(f"{source}: {str(exc).lstrip(': ')}") from None


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML/JSON-ready) form of a config object."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else copy.deepcopy(obj)


def _load_yaml(path: str | Path) -> dict:
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


def load_params(path: str | Path | dict, overlays: list[str | Path] = ()) -> Params:
    """Read ``params.yaml`` (or an already loaded mapping) plus overlays, validated."""
    data = path if isinstance(path, dict) else _load_yaml(path)
    source = "<params>" if isinstance(path, dict) else str(path)
    for overlay in overlays:
        data = deep_merge(data, _load_yaml(overlay))
        source = f"{source}+{overlay}"
    params = from_dict(Params, data, source)
    for name in params.variants:
        resolve_run(params, None, name, 0, check_only=True)
    for name in params.experiment.variants:
        if name not in params.variants:
            raise HqmError(f"{source}: experiment.variants names '{name}', which variants does not define")
    for name in params.experiment.datasets:
        if name not in params.datasets:
            raise HqmError(f"{source}: experiment.datasets names '{name}', which datasets does not define")
    return params


def resolve_run(params: Params, dataset: str | None, variant: str, seed: int, check_only: bool = False):
    """Merge global sections with the variant's overrides into one :class:`RunConfig`."""
    if variant not in params.variants:
        raise HqmError(f"params: unknown variant '{variant}' (defined: {', '.join(params.variants)})")
    v = params.variants[variant]
    where = f"params: variants.{variant}"
    model = from_dict(ModelConfig, deep_merge(to_dict(params.model), v.model), f"{where}.model")
    train = from_dict(TrainConfig, deep_merge(to_dict(params.train), v.train), f"{where}.train")
    hard = from_dict(
        HardQueryConfig, deep_merge(to_dict(params.hard_queries), v.hard_queries), f"{where}.hard_queries"
    )
    if v.method != "qpic" and not model.aux_loss:
        raise HqmError(f"{where}: method '{v.method}' needs model.aux_loss: true (hard queries are built per decoder layer)")
    if check_only:
        return None
    if dataset not in params.datasets:
        raise HqmError(f"params: unknown dataset '{dataset}' (defined: {', '.join(params.datasets)})")
    return RunConfig(
        dataset_name=dataset,
        dataset=copy.deepcopy(params.datasets[dataset]),
        variant=variant,
        method=v.method,
        seed=seed,
        model=model,
        loss=copy.deepcopy(params.loss),
        hard_queries=hard,
        augment=copy.deepcopy(params.augment),
        train=train,
        evaluation=copy.deepcopy(params.evaluation),
    )


def save_run_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved run configuration atomically (YAML)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(to_dict(cfg), handle, sort_keys=False)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a resolved run configuration written by :func:`save_run_config`."""
    return from_dict(RunConfig, _load_yaml(path), str(path))
