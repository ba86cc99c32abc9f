"""``hqm visualize``: a gallery of one checkpoint on a few test images (triplets, GBS, AMM)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "visualize",
        help="checkpoint + test images -> one gallery PNG (top triplets, GBS-shifted pairs, AMM attention)",
        description="Per image: the top detected triplets; the GT pairs shifted by GBS with their IoU to "
        "the ground truth; one query's last-layer cross-attention without and with the AMM mask.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint_last.pth / checkpoint_best.pth of a run")
    p.add_argument("--dataset-root", required=True, help="dataset folder (docs/architecture.md layout)")
    p.add_argument("--format", required=True, choices=("hico", "vcoco"))
    p.add_argument("--out", required=True, help="gallery PNG to write")
    p.add_argument("--num-images", type=int, default=3, help="test images drawn (with at least one GT pair)")
    p.add_argument("--seed", type=int, default=0, help="picks the images and the GBS / AMM random draws")
    p.add_argument("--top-k", type=int, default=3, help="triplets drawn per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hqm.errors import HqmError
    from hqm.reporting.gallery import write_gallery

    if args.num_images < 1 or args.top_k < 1:
        raise HqmError(f"--num-images {args.num_images} / --top-k {args.top_k}: must be at least 1")
    write_gallery(args.checkpoint, args.dataset_root, args.format, args.out, args.num_images, args.seed, args.top_k)
    print(args.out)
    return 0
