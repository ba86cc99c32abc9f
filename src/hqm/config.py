"""``params.yaml`` -> typed, validated configuration objects.

``params.yaml`` is the single source of truth. Its top-level sections map onto the dataclasses
below; an unknown key, a value of the wrong type or out of range, or a left-out key is an error
naming the file and the key path (checks in :mod:`hqm.config_checks`). Overlays (``--overlay``,
``config/paper.yaml``) merge over it and may leave keys out. A training run is described by a
:class:`RunConfig`, resolved once from the params for one (dataset, variant, seed); the run writes
it beside its results and every stage reads that resolved file, never ``params.yaml`` again.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hqm.config_checks import deep_merge, from_dict, load_yaml, missing_keys, source_of, to_dict
from hqm.errors import HqmError
from hqm.io import atomic_write
from hqm.methods import METHOD_NAMES, get_method

VARIANTS = METHOD_NAMES  # the default variant list: one variant per registered method
_load_yaml = load_yaml  # the name the drivers import


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """The QPIC detector (method.md §1); defaults are the paper's R50 model."""

    backbone: Literal["resnet10", "resnet18", "resnet34", "resnet50", "resnet101"] = "resnet50"
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
    # HQM's combined model skips decoder.norm on the AMM stream; its standalone AMM model applies it
    apply_decoder_norm: bool = False


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

    # "qpic": flip, colour jitter, multi-scale resize or resize-crop-resize (published); "none": the
    # training images get the test transform (shorter side test_scale), e.g. for the CPU demo
    policy: Literal["qpic", "none"] = "qpic"
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
    # "zeros": grads zeroed after each step (torch 1.5, as published: parameters unused in a step
    # still get AdamW moment/weight-decay updates); "none": set_to_none (they are skipped).
    zero_grad: Literal["zeros", "none"] = "zeros"
    # When the selection metric (QPIC protocol, test split) is computed; the last epoch always is.
    # "interval": every eval_every_epochs epochs; "qpic": every epoch (QPIC main.py);
    # "hqm": 0-based epoch % 5 == 0 or epoch > 40 (HQM main.py).
    eval_cadence: Literal["interval", "qpic", "hqm"] = "interval"
    eval_batch_size: int = 4  # images per forward pass of the selection evaluation
    log_every_iters: int = 50  # plain progress line every N optimiser steps (stderr not a terminal)
    # categories the selection metric averages over (evaluation.category_scope's meaning)
    eval_category_scope: Literal["all", "dataset"] = "all"
    # the selection metric's AP on HICO-DET (evaluation.ap_interpolation's meaning; V-COCO keeps QPIC's)
    eval_ap_interpolation: Literal["eleven_point", "all_point"] = "eleven_point"
    # lr schedule (hqm.engine.schedules): "step" = x0.1 after lr_drop epochs (published); "cosine" =
    # half cosine to min_lr_ratio x lr at the last step (the CPU demo; docs/demo.md). Both may warm up.
    lr_schedule: Literal["step", "cosine"] = "step"
    warmup_epochs: float = 0.0  # linear warm-up over this many epochs (fractions allowed); 0 = none
    min_lr_ratio: float = 0.0  # cosine only: final lr / base lr
    # > 0: evaluate and save an exponential moving average of the weights (hqm.engine.weight_average;
    # over about 1 / (1 - ema_decay) optimiser steps); 0 = the raw weights, as published
    ema_decay: float = 0.0
    # keep each transformed sample in memory once read when its transform is deterministic (the
    # test split; the train split too with augment.policy none): for small datasets like the demo's
    cache_samples: bool = False
    # write the last epoch's test predictions beside checkpoint_last.pth (predictions_last.pt), which
    # hqm evaluate then reuses instead of predicting again (hqm.engine.prediction_cache)
    keep_last_predictions: bool = False


@dataclass
class EvalConfig:
    """Which protocols to compute after training (evaluation.md)."""

    hico_protocols: list[Literal["qpic", "official"]] = field(default_factory=lambda: ["qpic", "official"])
    hico_settings: list[Literal["default", "known_object"]] = field(
        default_factory=lambda: ["default", "known_object"]
    )
    max_hois: int = 100
    batch_size: int = 4
    # "all": the published protocols' categories; "dataset": only the HOI categories the dataset's
    # annotations/corre_hico.npy allows (docs/evaluation.md §1.10)
    category_scope: Literal["all", "dataset"] = "all"
    # HICO-DET AP: "eleven_point" as both published protocols; "all_point" = VOC all-point AP, a
    # named option (docs/evaluation.md §1.11)
    ap_interpolation: Literal["eleven_point", "all_point"] = "eleven_point"


@dataclass
class DatasetConfig:
    """One dataset: its annotation format and root folder (layout in evaluation.md)."""

    format: Literal["hico", "vcoco"]
    root: str
    source: Literal["synthetic", "hico_det", "vcoco"] = "synthetic"


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
    # plain: one tint per image; ramp: the tint shaded by position (red with x, blue with y), so a
    # from-scratch backbone can read absolute position from local colour (docs/synthetic.md)
    background: Literal["plain", "ramp"] = "plain"
    hard_fraction: float = 0.0  # share of scenes drawn with a hard case (docs/synthetic.md)
    hard_occlusion: float = 1.0  # relative weight of each hard case among the hard scenes (0 = off)
    hard_truncation: float = 1.0
    hard_contact: float = 1.0


@dataclass
class PretrainConfig:
    """``hqm pretrain-detr``: a DETR trained on one dataset's training split, the stand-in for
    DETR's COCO weights where they cannot be downloaded (the CPU demo; docs/demo.md).

    The architecture is ``model``'s; the optimiser fields mean what :class:`TrainConfig`'s do.
    ``experiment.backbone_weights: <name>`` makes every run start from its conversion.
    """

    name: str = "detr_synthetic"  # the weights' name: <data_dir>/weights/<name>.pth
    dataset: str = "synthetic_hico"  # a key of ``datasets``; its training split is read
    seed: int = 0
    epochs: int = 10
    batch_size: int = 4
    lr: float = 5e-4
    lr_backbone: float = 5e-4
    weight_decay: float = 1e-4
    clip_max_norm: float = 0.1
    lr_schedule: Literal["step", "cosine"] = "cosine"
    lr_drop: int = 100
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.0
    threads: int = 0  # 0 = all cores
    # DETR's matching costs and loss weights (its main.py defaults)
    cost_class: float = 1.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    ce_loss_coef: float = 1.0
    bbox_loss_coef: float = 5.0
    giou_loss_coef: float = 2.0
    eos_coef: float = 0.1


@dataclass
class ArtefactConfig:
    """One external file: where to get it (an ordered list of sources), how to verify it, where it lands."""

    # Full digest or a >= 8-digit prefix. None = nobody has published one: the first download that
    # passes the content check is pinned in <data_dir>/checksums.json and later uses are verified.
    sha256: str | None
    path: str  # destination relative to the data dir
    # Tried in order until one delivers a file that passes the checks: http(s) URLs, Drive files
    # (gdrive:<id> or a drive.google.com link) and Drive folders (gdrive-folder:<id>[/<file>]).
    sources: list[str] = field(default_factory=list)
    url: str | None = None  # a single source (older params files); tried after ``sources``
    gdrive_id: str | None = None  # a Drive file id (older params files); tried after ``sources``
    extract_to: str | None = None  # unpack archives here (relative to the data dir)
    strip_top_folder: bool = False  # unpack the archive's single top folder's content (GitHub archives)
    size: int | None = None  # expected byte count, where one is known: checked before pinning
    # What the file must be before it is pinned: auto = from the file name (.zip/.tar* list,
    # .pth loads as a state dict, .json parses, .pickle/.mat magic), or one kind, or none.
    content: Literal["auto", "archive", "state_dict", "json", "pickle", "mat", "none"] = "auto"
    manual: str | None = None  # how to obtain the file by hand (sites with no direct link)


@dataclass
class VariantConfig:
    """A training variant: which method (a name of ``hqm.methods``) plus its own overrides."""

    method: str
    train: dict[str, Any] = field(default_factory=dict)
    hard_queries: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    """What ``rule all`` / ``dvc repro`` builds."""

    datasets: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    seeds: list[int] = field(default_factory=lambda: [42])
    # a dataset trained on a subset of ``variants`` (default: all of them), e.g. V-COCO with QPIC
    # and HQM only, as the paper reports it (its GBS / AMM ablations are on HICO-DET)
    dataset_variants: dict[str, list[str]] = field(default_factory=dict)
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
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    artefacts: dict[str, ArtefactConfig] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything one training run needs, resolved for one (dataset, variant, seed)."""

    dataset_name: str
    dataset: DatasetConfig
    variant: str
    method: str  # a name of hqm.methods (checked on loading)
    seed: int
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    hard_queries: HardQueryConfig = field(default_factory=HardQueryConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # No evaluation section: a run's training never reads it (``hqm evaluate`` takes it), so an
    # evaluation edit cannot retrain.


@dataclass
class PretrainSettings:
    """What ``hqm pretrain-detr`` reads: its section, the architecture, the transforms, the data."""

    pretrain: PretrainConfig
    model: ModelConfig
    augment: AugmentConfig
    dataset: DatasetConfig


def load_pretrain_settings(data: dict, source: str) -> PretrainSettings:
    """The sections ``pretrain``, ``model``, ``augment`` and ``datasets.<pretrain.dataset>`` of a
    params mapping (the whole params or the subset a driver passes), each written out in full."""
    pretrain = from_dict(PretrainConfig, data.get("pretrain") or {}, source, "pretrain", complete=True)
    entry = (data.get("datasets") or {}).get(pretrain.dataset)
    if entry is None:
        raise HqmError(f"{source}: pretrain.dataset: '{pretrain.dataset}' is not a key of datasets")
    return PretrainSettings(
        pretrain, from_dict(ModelConfig, data.get("model") or {}, source, "model", complete=True),
        from_dict(AugmentConfig, data.get("augment") or {}, source, "augment", complete=True),
        from_dict(DatasetConfig, entry, source, f"datasets.{pretrain.dataset}", complete=True))


# ---------------------------------------------------------------------------------------------
# Loading and resolving
# ---------------------------------------------------------------------------------------------


def load_artefacts(path: str | Path, overlays: list[str | Path] = ()) -> tuple[dict[str, ArtefactConfig], str]:
    """Only what ``hqm fetch`` reads: the ``artefacts`` section (validated) and ``experiment.data_dir``.

    A fetch must not depend on the training sections, so a file listing artefacts alone serves.
    """
    data = load_yaml(path)
    source = str(path)
    for overlay in overlays:
        data = deep_merge(data, load_yaml(overlay))
        source = f"{source}+{overlay}"
    section = data.get("artefacts") or {}
    if not isinstance(section, dict):
        raise HqmError(f"{source}: artefacts: expected a mapping of name -> entry")
    artefacts = {name: from_dict(ArtefactConfig, entry if isinstance(entry, dict) else {}, source,
                                 prefix=f"artefacts.{name}", complete=True)
                 for name, entry in section.items()}  # fmt: skip
    data_dir = (data.get("experiment") or {}).get("data_dir", "data")
    return artefacts, str(data_dir)


def load_params(path: str | Path | dict, overlays: list[str | Path] = ()) -> Params:
    """Read ``params.yaml`` (or an already loaded mapping) plus overlays, validated.

    The params themselves must write every entry out; overlays merge over them and may not.
    """
    data = path if isinstance(path, dict) else load_yaml(path)
    source = "<params>" if isinstance(path, dict) else str(path)
    if overlays:
        from_dict(Params, data, source, complete=True)
    for overlay in overlays:
        data = deep_merge(data, load_yaml(overlay))
        source = f"{source}+{overlay}"
    params = from_dict(Params, data, source, complete=True)
    for name in params.variants:
        resolve_run(params, None, name, 0, check_only=True)
    for name in params.experiment.variants:
        if name not in params.variants:
            raise HqmError(f"{source}: experiment.variants names '{name}', which variants does not define")
    for name in params.experiment.datasets:
        if name not in params.datasets:
            raise HqmError(f"{source}: experiment.datasets names '{name}', which datasets does not define")
    _check_dataset_variants(params.experiment, params.datasets, source)
    _check_pretrain(params, source)
    return params


def _check_pretrain(params: Params, source: str) -> None:
    """When the runs start from ``pretrain.name``: a name of its own, a dataset the grid builds."""
    name = params.pretrain.name
    if params.experiment.backbone_weights != name:
        return
    if name in params.artefacts:
        raise HqmError(f"{source}: pretrain.name: '{name}' is also an artefact; experiment.backbone_weights "
                       "must name one of them")
    if params.pretrain.dataset not in params.experiment.datasets:
        raise HqmError(f"{source}: pretrain.dataset: '{params.pretrain.dataset}' is not in experiment.datasets "
                       "(the pipeline builds only those)")


def _check_dataset_variants(exp: ExperimentConfig, datasets: dict, source: str) -> None:
    for name, subset in exp.dataset_variants.items():
        where = f"{source}: experiment.dataset_variants.{name}"
        if name not in datasets:
            raise HqmError(f"{where}: no such dataset in datasets")
        if not subset:
            raise HqmError(f"{where}: empty (omit the entry to train every variant)")
        for variant in subset:
            if variant not in exp.variants:
                raise HqmError(f"{where}: '{variant}' is not in experiment.variants")


def _check_run_keys_written(params: Params, method: str) -> None:
    """A key left out of the params is an error, not a built-in default.

    Sections absent as a whole are the caller's selection (``hqm resolve-config`` receives only
    the entries a run depends on, and of ``hard_queries`` only those its method reads); a key
    left out *inside* a section it received is not.
    """
    hard_keys = get_method(method).hard_query_keys
    for key in missing_keys(params):
        parts = key.split(".")
        if len(parts) < 2 or (parts[0] == "hard_queries" and parts[1] not in hard_keys):
            continue
        raise HqmError(f"{source_of(params)}: {key}: missing (every entry must be written out; "
                       "there is no built-in default)")


def _variant_sections(params: Params, variant: str) -> tuple[ModelConfig, TrainConfig, HardQueryConfig]:
    """The global model / train / hard_queries sections with the variant's overrides merged in."""
    v = params.variants[variant]
    source, where = source_of(params), f"variants.{variant}"
    model = from_dict(ModelConfig, deep_merge(to_dict(params.model), v.model), source, f"{where}.model")
    train = from_dict(TrainConfig, deep_merge(to_dict(params.train), v.train), source, f"{where}.train")
    hard = from_dict(HardQueryConfig, deep_merge(to_dict(params.hard_queries), v.hard_queries), source,
                     f"{where}.hard_queries")
    if get_method(v.method).streams and not model.aux_loss:
        raise HqmError(f"{source}: {where}: method '{v.method}' needs model.aux_loss: true "
                       "(hard queries are built per decoder layer)")
    return model, train, hard


def resolve_run(params: Params, dataset: str | None, variant: str, seed: int, check_only: bool = False):
    """Merge global sections with the variant's overrides into one :class:`RunConfig`."""
    source = source_of(params)
    if variant not in params.variants:
        raise HqmError(f"{source}: unknown variant '{variant}' (defined: {', '.join(params.variants)})")
    method = params.variants[variant].method
    if not check_only:
        _check_run_keys_written(params, method)
    model, train, hard = _variant_sections(params, variant)
    if check_only:
        return None
    if dataset not in params.datasets:
        raise HqmError(f"{source}: unknown dataset '{dataset}' (defined: {', '.join(params.datasets)})")
    return RunConfig(
        dataset_name=dataset,
        dataset=copy.deepcopy(params.datasets[dataset]),
        variant=variant,
        method=method,
        seed=seed,
        model=model,
        loss=copy.deepcopy(params.loss),
        hard_queries=hard,
        augment=copy.deepcopy(params.augment),
        train=train,
    )


def save_run_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved run configuration atomically (YAML)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(to_dict(cfg), handle, sort_keys=False)


def load_run_config(path: str | Path) -> RunConfig:
    """Read a resolved run configuration written by :func:`save_run_config` (every key written out)."""
    return from_dict(RunConfig, load_yaml(path), str(path), complete=True)
