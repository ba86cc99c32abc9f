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
    parser.add_argument("--trusted", action="store_true",
                        help="allow unpickling arbitrary objects in the DETR file (released upstream files)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.io import sha256_file, write_json
    from hqm.models.weights import (
        convert_detr_to_qpic,
        load_checkpoint,
        qpic_to_hqm_layout,
        save_checkpoint,
        state_dict_of,
    )

    state = convert_detr_to_qpic(state_dict_of(load_checkpoint(args.detr, args.trusted), args.detr),
                                 args.dataset_format, args.convert_seed)
    if args.layout == "hqm":
        state = qpic_to_hqm_layout(state)
    meta = {"source": "detr", "dataset_format": args.dataset_format, "layout": args.layout,
            "convert_seed": args.convert_seed}
    save_checkpoint(args.out, {"model": state, "meta": meta})
    record = {**meta, "source_path": str(args.detr), "source_sha256": sha256_file(args.detr),
              "path": str(args.out), "sha256": sha256_file(args.out), "num_keys": len(state)}
    write_json(f"{args.out}.json", record)
    print(f"wrote {args.out} ({len(state)} tensors, sha256 {record['sha256'][:12]}...)")
    return 0
