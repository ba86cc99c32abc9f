"""``hqm tables``, ``hqm plots``: the pipeline's outputs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tables", help="metrics JSON files -> results tables (md, tex, csv)")
    p.add_argument("--metrics", nargs="+", required=True, help="runs' metrics.json files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--backbone", default="resnet50", help="selects the published row (R50 / R101)")
    p.add_argument("--variants", nargs="*", default=None, help="row order")
    p.add_argument("--hico-protocol", choices=("official", "qpic"), default="official",
                   help="protocol of the HICO-DET Default columns (qpic for synthetic data)")
    p.set_defaults(func=run)

    p = subparsers.add_parser("plots", help="runs' log.jsonl files -> training curves (PNG + CSV)")
    p.add_argument("--logs", nargs="+", required=True, help="runs/<dataset>/<variant>/seed<s>/log.jsonl")
    p.add_argument("--out-png", required=True)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--title", default="training curves")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch on the sub-command name (one module, two sub-commands)."""
    runners = {"tables": run_tables, "plots": run_plots}
    return runners[args.command](args)


def run_tables(args: argparse.Namespace) -> int:
    from hqm.reporting.tables import write_tables

    for path in write_tables(args.metrics, args.out_dir, args.backbone, args.variants, args.hico_protocol):
        print(path)
    return 0


def run_plots(args: argparse.Namespace) -> int:
    from hqm.reporting.plots import write_plots

    # label each run "<variant>/seed<s>" from runs/<dataset>/<variant>/seed<s>/log.jsonl
    logs = {f"{Path(p).parent.parent.name}/{Path(p).parent.name}": p for p in args.logs}
    write_plots(logs, args.out_png, args.out_csv, args.title)
    return 0
