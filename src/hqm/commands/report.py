"""``hqm resolve-config``: the pipeline's glue (tables, plots, visualize: their own modules)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resolve-config",
        help="params (+ overlays) + dataset/variant/seed -> the resolved run configuration YAML",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--params", help="params.yaml")
    src.add_argument("--params-json", help="the params as a JSON string (what Snakemake passes)")
    p.add_argument("--overlay", action="append", default=[], help="YAML merged over --params (repeatable)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--init-weights", default=None, help="converted initial weights (model.init_weights)")
    p.add_argument("--out", required=True, help="resolved run configuration (YAML)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_resolve_config(args)


def resolve_config(
    params_data: dict, dataset: str, variant: str, seed: int, init_weights: str | None, source: str
):
    """The :class:`~hqm.config.RunConfig` built from the entries this run depends on only.

    Both drivers reach the same file: DVC hands the whole params, Snakemake the selected subtree.
    """
    from hqm.config import Params, from_dict, resolve_run
    from hqm.reporting.pipeline_params import select_params, train_param_keys

    selected = select_params(params_data, train_param_keys(params_data, dataset, variant))
    cfg = resolve_run(from_dict(Params, selected, source), dataset, variant, seed)
    if init_weights:
        cfg.model.init_weights = init_weights
    return cfg


def run_resolve_config(args: argparse.Namespace) -> int:
    from hqm.config import _load_yaml, deep_merge, save_run_config
    from hqm.errors import HqmError

    if args.params_json is not None:
        try:
            data, source = json.loads(args.params_json), "--params-json"
        except json.JSONDecodeError as exc:
            raise HqmError(f"--params-json: malformed JSON ({exc.msg})") from None
    else:
        data, source = _load_yaml(args.params), args.params
    for overlay in args.overlay:
        data, source = deep_merge(data, _load_yaml(overlay)), f"{source}+{overlay}"
    cfg = resolve_config(data, args.dataset, args.variant, args.seed, args.init_weights, source)
    save_run_config(cfg, args.out)
    return 0
