"""``hqm train``: one (dataset, variant, seed) run from its resolved config, resumable."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one run (resumes from <out>/state); writes checkpoint_last/best.pth, log, curves, summary",
        description="Train from a resolved run config (hqm resolve-config). Killed and restarted with "
        "the same command, the run continues from <out>/state/last.pth; a state saved under another "
        "configuration is an error unless --restart is given. Evaluation beyond the in-training "
        "selection metric is `hqm evaluate`.",
    )
    parser.add_argument("--config", required=True, help="resolved RUN/run_config.yaml")
    parser.add_argument("--out", required=True,
                        help="run directory (checkpoint_last.pth, checkpoint_best.pth, log.jsonl, curves.csv, "
                        "config.yaml, train_summary.json)")  # fmt: skip
    parser.add_argument("--nproc", type=int, default=1,
                        help="processes (GPUs); >1 relaunches under torchrun --standalone")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--nnodes", type=int, default=1, help=">1: srun + torchrun over M SLURM nodes")
    parser.add_argument("--claim-gpus", action="store_true", help="pin to --nproc free GPUs (flock, waits)")
    parser.add_argument("--restart", action="store_true",
                        help="discard <out>/state (saved under another configuration) and train afresh")
    parser.set_defaults(func=run)


def _forwarded_args(args: argparse.Namespace) -> list[str]:
    out = ["train", "--config", args.config, "--out", args.out, "--device", args.device]
    return out + (["--restart"] if args.restart else [])


def run(args: argparse.Namespace) -> int:
    from hqm.config import load_run_config
    from hqm.engine.distributed import launch_torchrun, needs_launcher
    from hqm.engine.resume import load_resumable
    from hqm.engine.run_lock import locked_run_dir
    from hqm.errors import HqmError

    cfg = load_run_config(args.config)  # validate before launching anything
    if cfg.train.epochs < 1:
        raise HqmError(f"{args.config}: train.epochs: {cfg.train.epochs}; a run needs at least one epoch")
    with locked_run_dir(args.out):  # one writer per run folder (its ranks inherit the lock)
        if "WORLD_SIZE" not in os.environ:  # a bad or foreign state is said once, before any rank
            load_resumable(args.out, cfg, args.nproc * args.nnodes, args.restart)
        if needs_launcher(args.nproc, args.nnodes, args.claim_gpus):
            return launch_torchrun(args.nproc, _forwarded_args(args), args.nnodes, args.claim_gpus)
        return _train(cfg, args)


def _train(cfg, args: argparse.Namespace) -> int:
    from hqm.engine.distributed import build_dist_env, shutdown
    from hqm.engine.train import run_training

    env = build_dist_env(args.device, cfg.train.threads_per_rank)
    try:
        run_training(cfg, args.out, env, restart=args.restart)
    finally:
        shutdown(env)
    return 0
