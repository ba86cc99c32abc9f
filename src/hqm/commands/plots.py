"""``hqm plots``: training curves and per-category AP figures of one dataset (PNG, PDF, CSV)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plots",
        help="runs' log.jsonl (or curves.csv) + metrics -> results/plots/NAME_{curves,categories}.{png,pdf}",
        description="Training curves (loss, mAP in percent) with one line per variant (mean over seeds, "
        "band = std) and the per-category AP of every variant against QPIC (rare vs non-rare).",
    )
    p.add_argument("--logs", nargs="+", required=True,
                   help="runs/NAME/VARIANT/seedS/log.jsonl or curves.csv (the variant is read from the path)")
    p.add_argument("--metrics", nargs="*", default=[], help="the runs' metrics_last.json (per-category AP)")
    p.add_argument("--out-dir", required=True, help="writes NAME_curves.{png,pdf,csv}, NAME_categories.{png,pdf}")
    p.add_argument("--dataset", required=True, help="dataset name: the file prefix and the figure titles")
    p.add_argument("--variants", nargs="*", default=None, help="line order (default: as given)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.reporting.categories import write_category_figure
    from hqm.reporting.plots import write_curves

    for path in write_curves(args.logs, args.out_dir, args.dataset, args.variants):
        print(path)
    for path in write_category_figure(args.metrics, args.out_dir, args.dataset, args.variants):
        print(path)
    return 0
