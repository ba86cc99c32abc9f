"""Which ``params.yaml`` entries each pipeline stage depends on, shared by both drivers.

The Snakefile passes exactly these subtrees to ``hqm resolve-config`` (so ``--config`` overrides
reach the CLI and a change reruns only the runs that read it); ``dvc.yaml`` lists the same keys
under each stage's ``params:``. A variant's training reads the hard-query settings of its method only.
"""

from __future__ import annotations

import copy
from typing import Any

from hqm.errors import HqmError

# hard_queries sub-sections each method reads (GBS/AMM alone run their stream every iteration)
HARD_QUERY_KEYS = {
    "qpic": (),
    "gbs": ("gbs", "loss_weight"),
    "amm": ("amm", "loss_weight"),
    "hqm": ("gbs", "amm", "alternation", "loss_weight"),
}
RUN_SECTIONS = ("model", "loss", "augment", "train", "evaluation")


def train_param_keys(params: dict, dataset: str, variant: str) -> list[str]:
    """Dotted keys one (dataset, variant) training depends on, e.g. ``variants.hqm``."""
    try:
        method = params["variants"][variant]["method"]
    except (KeyError, TypeError):
        raise HqmError(f"params: variants.{variant}.method is not defined") from None
    if method not in HARD_QUERY_KEYS:
        raise HqmError(f"params: variants.{variant}.method: unknown method {method!r}")
    return (
        [f"datasets.{dataset}", *RUN_SECTIONS]
        + [f"hard_queries.{key}" for key in HARD_QUERY_KEYS[method]]
        + [f"variants.{variant}"]
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
    return "qpic" if method == "qpic" else "hqm"


def retype_cli_strings(tree: dict, skip: tuple[str, ...] = ("artefacts",)) -> None:
    """Give ``snakemake --config`` values their YAML types, in place.

    Snakemake parses nested ``--config`` values with YAML's base loader, so ``train={lr: 0.5}``
    arrives as the string ``"0.5"``. String leaves that read as a number, boolean or null are
    converted; other strings (paths, names, ``none``) stay. ``artefacts`` (sha256 prefixes that may
    be all digits) is left alone.
    """
    import yaml

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
