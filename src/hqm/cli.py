"""The ``hqm`` command line: one sub-command per pipeline stage.

Each sub-command lives in ``hqm.commands.<module>`` with ``add_parser(subparsers)`` and
``run(args) -> int``. Command modules import heavy packages (torch) inside ``run`` only, so
``hqm --help`` stays fast. Errors of type :class:`~hqm.errors.HqmError` print as one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hqm import __version__
from hqm.errors import HqmError

# sub-command module names, in the order of the pipeline
COMMAND_MODULES = (
    "fetch",  # fetch + verify external files
    "convert",  # convert-hico, convert-vcoco: official annotations -> QPIC/PPDM format
    "synthetic",  # make-synthetic: the embedded synthetic HOI dataset
    "pretrain",  # pretrain-detr: a DETR trained on a dataset's training split (the demo's DETR)
    "weights",  # convert-weights: DETR COCO checkpoint -> QPIC/HQM initial weights
    "train",  # train: one (dataset, variant, seed) run
    "evaluate",  # evaluate: a checkpoint on a dataset
    "tables",  # tables: metrics -> result tables in the papers' layout
    "plots",  # plots: training curves, per-category AP
    "visualize",  # visualize: gallery of one checkpoint (triplets, GBS, AMM)
    "eval_predictions",  # eval-predictions: a predictions file against ground truth
    "pipeline",  # resolve-config, grid: the drivers' glue
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hqm", description="Hard-Positive Query Mining on QPIC: data, training, evaluation, tables."
    )
    parser.add_argument("--version", action="version", version=f"hqm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"hqm.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HqmError as exc:
        print(f"hqm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only folder, permission: the environment, not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hqm {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hqm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
