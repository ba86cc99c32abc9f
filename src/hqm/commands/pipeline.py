"""``hqm resolve-config`` and ``hqm grid``: the glue the pipeline drivers call between stages."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resolve-config",
        help="params (+ overlays) + dataset/variant/seed -> the run configuration a training reads",
        description="Writes everything one training depends on and nothing from the evaluation "
        "section (the evaluate stage reads that), so editing evaluation.* never retrains.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--params", help="params.yaml")
    src.add_argument("--params-json", help="the params as a JSON string (what Snakemake passes)")
    p.add_argument("--overlay", action="append", default=[], help="YAML merged over --params (repeatable)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--init-weights", default=None,
                   help="initial weights (default: the converted DETR of experiment.backbone_weights)")
    p.add_argument("--out", required=True, help="resolved run configuration (YAML)")
    p.set_defaults(func=run_resolve_config)

    p = subparsers.add_parser(
        "grid",
        help="print the run files of the experiment grid (what dvc.yaml's tables/plots stages read)",
        description="One path per (variant, seed) of experiment.variants x experiment.seeds and per "
        "NAME, space-separated; with --variants, the variant names.",
    )
    p.add_argument("--params", required=True, help="params.yaml")
    p.add_argument("--dataset", help="dataset whose run files to print")
    p.add_argument("--variants", action="store_true",
                   help="print the variant names instead (of --dataset: experiment.dataset_variants)")
    p.add_argument("--first-seed", action="store_true", help="only the first seed's runs")
    p.add_argument("names", nargs="*", help="file names inside each run folder, e.g. metrics_last.json")
    p.set_defaults(func=run_grid)


def resolve_config(
    params_data: dict, dataset: str, variant: str, seed: int, init_weights: str | None, source: str
):
    """The :class:`~hqm.config.RunConfig` built from the entries this run depends on only.

    Both drivers reach the same file: DVC hands the whole params, Snakemake the selected subtree.
    """
    from hqm.config import Params, from_dict, resolve_run
    from hqm.pipeline.params import init_weights_path, select_params, train_param_keys

    selected = select_params(params_data, train_param_keys(params_data, dataset, variant))
    experiment = selected.pop("experiment")  # names the initial weights; not part of a run's config
    cfg = resolve_run(from_dict(Params, selected, source), dataset, variant, seed)
    if init_weights is None:
        init_weights = init_weights_path({**selected, "experiment": experiment}, dataset, variant)
    if init_weights:
        cfg.model.init_weights = init_weights
    return cfg


def read_params_args(args: argparse.Namespace) -> tuple[dict, str]:
    """The params mapping of ``--params`` / ``--params-json`` with the ``--overlay``s merged, and a
    label for error messages."""
    from hqm.config import _load_yaml, deep_merge
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
    return data, source


def run_resolve_config(args: argparse.Namespace) -> int:
    import yaml

    from hqm.config import to_dict
    from hqm.io import atomic_write

    data, source = read_params_args(args)
    cfg = to_dict(resolve_config(data, args.dataset, args.variant, args.seed, args.init_weights, source))
    cfg.pop("evaluation", None)  # the evaluate stage's business (hqm evaluate --eval-json)
    with atomic_write(args.out, "w", encoding="utf-8") as handle:
        yaml.safe_dump(cfg, handle, sort_keys=False)
    return 0


def run_grid(args: argparse.Namespace) -> int:
    from hqm.config import _load_yaml
    from hqm.errors import HqmError
    from hqm.pipeline.params import dataset_variants
    from hqm.pipeline.stages import run_files

    params = _load_yaml(args.params)
    if args.variants:
        variants = dataset_variants(params, args.dataset) if args.dataset else params["experiment"]["variants"]
        print(" ".join(variants))
        return 0
    if not args.dataset or not args.names:
        raise HqmError("grid: give --dataset and file NAMEs (or --variants)")
    if args.dataset not in params["experiment"]["datasets"]:
        raise HqmError(f"{args.params}: experiment.datasets has no dataset '{args.dataset}'")
    print(" ".join(run_files(params, args.dataset, args.names, first_seed=args.first_seed)))
    return 0
