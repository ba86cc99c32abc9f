"""``hqm make-synthetic``: write the embedded synthetic HOI dataset (no download)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from hqm.config import SyntheticConfig

# one --option per field of SyntheticConfig, so params.yaml's section maps onto flags one to one
_SIZE_OPTIONS = tuple(f.name for f in dataclasses.fields(SyntheticConfig))
_TYPES = {"int": int, "float": float}  # field annotations are strings (postponed evaluation)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-synthetic",
        help="generate the synthetic HOI dataset (HICO-DET or V-COCO layout)",
        description="Draw the synthetic HOI dataset into OUT, in the HICO-DET (PPDM) or V-COCO layout. "
        "Sizes default to params.yaml's 'synthetic' section (with --params), then to the built-in defaults; "
        "explicit options win.",
    )
    parser.add_argument("--format", choices=("hico", "vcoco"), required=True)
    parser.add_argument("--out", required=True, help="dataset root to (re)create")
    parser.add_argument("--params", help="params.yaml whose 'synthetic' section gives the sizes")
    parser.add_argument("--hard-test", action="store_true",
                        help="same training split, but a test split of other scenes that are all hard "
                        "(cases weighted by synthetic.hard_<case>; docs/synthetic.md): write it to its own --out root")
    for f in dataclasses.fields(SyntheticConfig):
        kind = _TYPES.get(str(f.type), str)
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.data.synthetic import make_synthetic

    cfg = SyntheticConfig()
    if args.params:
        from hqm.config import load_params

        cfg = load_params(args.params).synthetic
    overrides = {name: getattr(args, name) for name in _SIZE_OPTIONS if getattr(args, name) is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    summary = make_synthetic(cfg, args.format, args.out, hard_test=args.hard_test)
    print(json.dumps({"out": args.out, "format": args.format, "hard_test": args.hard_test, **summary}))
    return 0
