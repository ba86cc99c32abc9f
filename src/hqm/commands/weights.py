"""``hqm convert-weights``: DETR COCO checkpoint -> QPIC / HQM initial weights (method.md §7.3-7.5).

Writes ``{"model": state_dict, "meta": {...}}`` and a JSON sidecar ``<out>.json`` with the
conversion seed and the sha256 of the output, so a V-COCO conversion can be checked for identity.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-weights", help="convert the DETR COCO checkpoint into QPIC/HQM initial weights",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--detr", required=True, help="DETR checkpoint (e.g. detr-r50-e632da11.pth)")
    parser.add_argument("--out", required=True, help="output checkpoint path")
    parser.add_argument("--dataset-format", choices=("hico", "vcoco"), required=True,
                        help="hico: 81 object rows; vcoco: 82 rows with a seeded missing-object row")
    parser.add_argument("--layout", choices=("qpic", "hqm"), default="qpic",
                        help="qpic: heads at top level; hqm: heads under transformer.decoder")
    parser.add_argument("--convert-seed", type=int, default=0, help="seed of the V-COCO extra row")
    parser.add_argument("--unsafe-pickle", action="store_true",
                        help="UNSAFE: unpickle arbitrary objects in the DETR file (can run code); not needed "
                        "for the released DETR files, whose argparse Namespace is allow-listed")
    # earlier spelling; released files no longer need it, so it changes nothing (kept for old workflows)
    parser.add_argument("--trusted", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.engine.checkpoint import convert_detr_file, save_weights
    from hqm.io import sha256_file, write_json
    from hqm.models.weights import qpic_to_hqm_layout

    state = convert_detr_file(args.detr, args.dataset_format, args.convert_seed, args.unsafe_pickle)
    if args.layout == "hqm":
        state = qpic_to_hqm_layout(state)
    meta = {"source": "detr", "dataset_format": args.dataset_format, "layout": args.layout,
            "convert_seed": args.convert_seed}
    save_weights(args.out, state, meta)
    record = {**meta, "source_path": str(args.detr), "source_sha256": sha256_file(args.detr),
              "path": str(args.out), "sha256": sha256_file(args.out), "num_keys": len(state)}
    write_json(f"{args.out}.json", record)
    print(f"wrote {args.out} ({len(state)} tensors, sha256 {record['sha256'][:12]}...)")
    return 0
