"""``hqm tables``: the runs' metrics JSON files -> one dataset's table (Markdown, LaTeX, CSV)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tables",
        help="metrics JSON files -> results/tables/NAME.{md,tex,csv} in the papers' layout",
        description="One table per dataset: published rows with their citation, ours as mean ± std "
        "over seeds for the last and best checkpoints, differences to the paper on real data only.",
    )
    p.add_argument("--metrics", nargs="+", required=True,
                   help="the runs' metrics_last.json / metrics_best.json (each names its checkpoint)")
    p.add_argument("--out-dir", required=True, help="writes NAME.md, NAME.tex, NAME.csv here")
    p.add_argument("--dataset", required=True, help="dataset name (params.yaml datasets.*); every file must match")
    p.add_argument("--backbone", default="resnet50", help="backbone of the runs (selects the published rows compared)")
    p.add_argument("--variants", nargs="*", default=None, help="row order")
    p.add_argument("--synthetic", action="store_true", help="synthetic data: no comparison with the paper")
    p.add_argument("--hico-protocol", choices=("official", "qpic"), default="official",
                   help="protocol of the HICO-DET Default columns")
    p.set_defaults(func=run)
    add_readme_parser(subparsers)


def run(args: argparse.Namespace) -> int:
    from hqm.reporting.table_render import write_tables

    for path in write_tables(args.metrics, args.out_dir, args.dataset, args.backbone, args.variants,
                             args.synthetic, args.hico_protocol):
        print(path)
    return 0


def add_readme_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "readme-table",
        help="put the demo's own tables (results/tables/*.md) and the machine into README.md",
        description="Replaces the README block between <!-- demo-results:start --> and "
        "<!-- demo-results:end --> with the Markdown tables the demo wrote and the machine they "
        "were measured on (`make readme-table` after `make demo`).",
    )
    p.add_argument("--readme", default="README.md")
    p.add_argument("--tables", nargs="+", required=True, help="results/tables/<dataset>.md files")
    p.add_argument("--threads", type=int, default=None, help="threads per training (train.threads_per_rank)")
    p.set_defaults(func=run_readme)


def run_readme(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from hqm.reporting.readme import machine_line, update_readme

    machine = machine_line(torch.__version__, args.threads, torch.backends.cpu.get_cpu_capability())
    update_readme(args.readme, [Path(t) for t in args.tables], machine)
    print(args.readme)
    return 0
