"""``hqm evaluate``: a checkpoint (ours, or a released QPIC / HQM one) on a dataset -> metrics JSON."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset's test split (metrics JSON, optional V-COCO pickle)",
    )
    parser.add_argument("--checkpoint", required=True, help="our checkpoint.pth or a released one")
    parser.add_argument("--dataset-root", required=True, help="dataset folder (docs/architecture.md layout)")
    parser.add_argument("--format", required=True, choices=("hico", "vcoco"))
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--vcoco-pickle", help="also write the official V-COCO detections pickle")
    parser.add_argument("--released", choices=("qpic", "hqm"),
                        help="the checkpoint is a released upstream file (paper R50 model)")
    parser.add_argument("--nproc", type=int, default=1, help=">1 shards the test split under torchrun")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--nnodes", type=int, default=1, help=">1: srun + torchrun over M SLURM nodes")
    parser.add_argument("--unsafe-pickle", action="store_true",
                        help="UNSAFE: unpickle arbitrary objects in the checkpoint (can run code); released "
                        "QPIC/HQM files load without it")
    parser.set_defaults(func=run)


def _forwarded_args(args: argparse.Namespace) -> list[str]:
    out = ["evaluate", "--checkpoint", args.checkpoint, "--dataset-root", args.dataset_root,
           "--format", args.format, "--out", args.out, "--device", args.device]
    if args.vcoco_pickle:
        out += ["--vcoco-pickle", args.vcoco_pickle]
    if args.released:
        out += ["--released", args.released]
    return out + (["--unsafe-pickle"] if args.unsafe_pickle else [])


def run(args: argparse.Namespace) -> int:
    from hqm.engine.distributed import build_dist_env, launch_torchrun, needs_launcher, shutdown
    from hqm.engine.run_lock import check_outputs_distinct
    from hqm.errors import HqmError

    if args.vcoco_pickle and args.format != "vcoco":
        raise HqmError(f"--vcoco-pickle {args.vcoco_pickle}: only for --format vcoco")
    check_outputs_distinct({"--checkpoint": args.checkpoint}, {"--out": args.out, "--vcoco-pickle": args.vcoco_pickle})
    if needs_launcher(args.nproc, args.nnodes):
        return launch_torchrun(args.nproc, _forwarded_args(args), args.nnodes)

    from hqm.engine.inference import evaluate_checkpoint
    from hqm.io import write_json

    env = build_dist_env(args.device)
    try:
        metrics = evaluate_checkpoint(args.checkpoint, args.dataset_root, args.format, env,
                                      released=args.released, vcoco_pickle=args.vcoco_pickle,
                                      unsafe_pickle=args.unsafe_pickle)
        if env.is_main:
            write_json(args.out, metrics)
    finally:
        shutdown(env)
    return 0
