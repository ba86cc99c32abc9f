"""``hqm pretrain-detr``: train a DETR on a dataset's training split (the ``pretrain:`` section) and
write it as DETR's COCO file is laid out, for ``hqm convert-weights`` (docs/demo.md)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain-detr",
        help="train a DETR on a dataset's training split: the demo's stand-in for DETR's COCO weights",
        description="Trains DETR (params' model architecture, COCO class ids) on the training split of "
        "pretrain.dataset with the pretrain section's optimiser and writes {model, meta} plus <out>.json "
        "(settings, per-epoch losses, sha256). hqm convert-weights reads it like the released DETR file.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--params", help="params.yaml")
    source.add_argument("--params-json", help="the params as a JSON string (what Snakemake passes)")
    parser.add_argument("--overlay", action="append", default=[], help="YAML merged over --params (repeatable)")
    parser.add_argument("--out", required=True, help="weights file to write (<data_dir>/weights/<pretrain.name>.pth)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: the first GPU when there is one")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.commands.pipeline import read_params_args
    from hqm.config import load_pretrain_settings
    from hqm.engine.pretrain import pretrain_detr, write_pretrained

    data, source = read_params_args(args)
    settings = load_pretrain_settings(data, source)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    state, records = pretrain_detr(settings, show_progress=not args.no_progress, device=device)
    record = write_pretrained(args.out, state, records, settings)
    last = records[-1]
    print(f"wrote {args.out} ({record['num_keys']} tensors, {len(records)} epochs, final loss "
          f"{last['loss']:.4f}, sha256 {record['sha256'][:12]}...)")
    return 0
