"""Which ``params.yaml`` entries each pipeline stage depends on, and the drivers' small helpers.

Only the drivers (Snakefile, dvc.yaml generator) and ``hqm resolve-config`` read this module.
The Snakefile passes exactly a run's entries to ``hqm resolve-config --params-json`` (so
``--config`` overrides reach the CLI and Snakemake's params trigger reruns only the runs that read
a changed entry). A variant's training reads the hard-query settings of its method only
(``hqm.methods``), never the ``evaluation`` section.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from hqm.errors import HqmError
from hqm.methods import get_method

# What a training reads besides its dataset, variant and method's hard-query keys. `evaluation` is
# not among them: the evaluate stage reads it, so editing it never retrains. `experiment.data_dir`
# and `experiment.backbone_weights` name the converted initial weights (init_weights_path).
RUN_SECTIONS = ("model", "loss", "augment", "train")
WEIGHTS_KEYS = ("experiment.data_dir", "experiment.backbone_weights")


def dataset_variants(params: dict, dataset: str) -> list[str]:
    """The variants trained on ``dataset``: ``experiment.dataset_variants`` or all of them."""
    exp = params["experiment"]
    return list(exp.get("dataset_variants", {}).get(dataset) or exp["variants"])


def variants_key(params: dict, dataset: str) -> str:
    """The params.yaml key holding ``dataset``'s variant list (DVC's matrix reads it)."""
    if dataset in params["experiment"].get("dataset_variants", {}):
        return f"experiment.dataset_variants.{dataset}"
    return "experiment.variants"


def train_param_keys(params: dict, dataset: str, variant: str) -> list[str]:
    """Dotted keys one (dataset, variant) training depends on, e.g. ``variants.hqm``."""
    try:
        method = params["variants"][variant]["method"]
    except (KeyError, TypeError):
        raise HqmError(f"params: variants.{variant}.method is not defined") from None
    hard_keys = get_method(method, f"params: variants.{variant}.method").hard_query_keys
    return (
        [f"datasets.{dataset}", *RUN_SECTIONS]
        + [f"hard_queries.{key}" for key in hard_keys]
        + [f"variants.{variant}", *WEIGHTS_KEYS]
    )


def select_params(params: dict, keys: list[str]) -> dict:
    """The nested sub-mapping of ``params`` holding only the dotted ``keys``."""
    out: dict[str, Any] = {}
    for dotted in keys:
        src: Any = params
        parts = dotted.split(".")
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                raise HqmError(f"params: missing entry '{dotted}' (every stage parameter must be written out)")
            src = src[part]
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = copy.deepcopy(src)
    return out


def cli_flags(values: dict[str, Any]) -> str:
    """``--num-train 400 --seed 0`` from ``{"num_train": 400, "seed": 0}`` (keys sorted).

    The Snakefile passes real values, dvc.yaml ``${section.key}`` references that DVC fills in from
    params.yaml, so both drivers run the same command line.
    """
    return " ".join(f"--{key.replace('_', '-')} {values[key]}" for key in sorted(values))


def weights_layout(method: str) -> str:
    """Head layout of the initial weights a method loads (method.md §7.5)."""
    return get_method(method).weight_layout


def unpacked_dir(data_dir: str, artefact: dict, top_folder: str) -> str:
    """Where an archive's ``top_folder`` landed: ``<data>/<extract_to>/<top_folder>``, or
    ``<data>/<extract_to>`` itself when fetch stripped the archive's single top folder
    (``strip_top_folder: true``, e.g. a GitHub archive named after its commit)."""
    root = f"{data_dir}/{artefact.get('extract_to') or ''}".rstrip("/")
    return root if artefact.get("strip_top_folder") else f"{root}/{top_folder}"


def weights_file(data_dir: str, detr: str, fmt: str, layout: str) -> str:
    """Where convert-weights writes the DETR checkpoint ``detr`` converted for a format and layout."""
    return f"{data_dir}/weights/{detr}_{fmt}_{layout}.pth"


def pretrained_detr(params: dict) -> str | None:
    """``pretrain.name`` when ``experiment.backbone_weights`` names it (the runs start from a DETR
    that ``hqm pretrain-detr`` trains), else None (a fetched artefact, or none)."""
    name = params["experiment"]["backbone_weights"]
    return name if name == (params.get("pretrain") or {}).get("name") else None


def pretrain_param_keys(params: dict) -> list[str]:
    """Dotted keys ``hqm pretrain-detr`` depends on."""
    return ["pretrain", "model", "augment", f"datasets.{params['pretrain']['dataset']}"]


def detr_file(params: dict, name: str) -> str:
    """The DETR checkpoint ``name`` that convert-weights reads: pretrain-detr's output
    (``<data>/weights/<name>.pth``) or the artefact's downloaded file."""
    data = params["experiment"]["data_dir"]
    if name == pretrained_detr(params):
        return f"{data}/weights/{name}.pth"
    return f"{data}/{params['artefacts'][name]['path']}"


def init_weights_path(params: dict, dataset: str, variant: str) -> str | None:
    """The converted initial weights one run loads, or None (experiment.backbone_weights: none)."""
    exp = params["experiment"]
    if exp["backbone_weights"] == "none":
        return None
    layout = weights_layout(params["variants"][variant]["method"])
    return weights_file(exp["data_dir"], exp["backbone_weights"], params["datasets"][dataset]["format"], layout)


def retype_cli_strings(tree: dict, skip: tuple[str, ...] = ("artefacts",)) -> None:
    """Give ``snakemake --config`` values their YAML types, in place.

    Snakemake parses nested ``--config`` values with YAML's base loader, so ``train={lr: 0.5}``
    arrives as the string ``"0.5"``. String leaves that read as a number, boolean or null are
    converted; other strings (paths, names, ``none``) stay. ``artefacts`` (sha256 prefixes that may
    be all digits) is left alone.
    """
    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        if isinstance(node, str):
            try:
                value = yaml.safe_load(node)
            except yaml.YAMLError:
                return node
            if value is None or isinstance(value, bool | int | float):
                return value
        return node

    for key in list(tree):
        if key not in skip:
            tree[key] = fix(tree[key])
