"""``hqm fetch``: download and verify the external artefacts listed in params.yaml."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fetch",
        help="download + verify external files (datasets, annotations, DETR and released weights)",
        description="Fetch the named artefacts of params.yaml's 'artefacts' section (all when none is named) "
        "into the data dir. A file already at its destination is verified and used without network. Each artefact lists its "
        "sources in order (docs/data_sources.md); the first one whose file passes the checks wins.",
    )
    parser.add_argument("names", nargs="*", help="artefact names (default: all)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--overlay", action="append", default=[], help="YAML merged over --params (repeatable)")
    parser.add_argument("--data-dir", help="destination root (default: experiment.data_dir)")
    parser.add_argument("--offline", action="store_true", help="never use the network; only verify")
    parser.add_argument("--retries", type=int, default=5, help="attempts per source after the first (transient errors)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a source is retried")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.config import load_artefacts
    from hqm.data.download import fetch_all

    artefacts, params_data_dir = load_artefacts(args.params, args.overlay)
    data_dir = args.data_dir or params_data_dir
    where = "+".join([args.params, *args.overlay])
    paths = fetch_all(artefacts, args.names, data_dir, where=where, offline=args.offline,
                      retries=args.retries, timeout=args.timeout, progress=not args.no_progress)  # fmt: skip
    print(json.dumps({name: str(path) for name, path in paths.items()}))
    return 0
