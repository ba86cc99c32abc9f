"""``hqm train``: one (dataset, variant, seed) run from its resolved config, resumable."""

from __future__ import annotations

import argparse
import os


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one run (resumes from <out>/state), evaluate it, write checkpoint + metrics",
        description="Train from a resolved run config (hqm resolve-config). Killed and restarted with "
        "the same command, the run continues from <out>/state/last.pth.",
    )
    parser.add_argument("--config", required=True, help="resolved run config.yaml")
    parser.add_argument("--out", required=True, help="run directory (checkpoint.pth, metrics.json, log.jsonl)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="processes (GPUs); >1 relaunches under torchrun --standalone")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--nnodes", type=int, default=1, help=">1: srun + torchrun over M SLURM nodes")
    parser.add_argument("--claim-gpus", action="store_true", help="pin to --nproc free GPUs (flock, waits)")
    parser.set_defaults(func=run)


def _forwarded_args(args: argparse.Namespace) -> list[str]:
    return ["train", "--config", args.config, "--out", args.out, "--device", args.device]


def run(args: argparse.Namespace) -> int:
    from hqm.config import load_run_config, to_dict
    from hqm.engine.checkpoint import check_resume_world_size
    from hqm.engine.distributed import launch_torchrun, needs_launcher
    from hqm.engine.run_lock import locked_run_dir

    cfg = load_run_config(args.config)  # validate before launching anything
    with locked_run_dir(args.out):  # one writer per run folder (its ranks inherit the lock)
        if "WORLD_SIZE" not in os.environ:  # a bad state is said once, before any rank starts
            check_resume_world_size(args.out, args.nproc * args.nnodes, to_dict(cfg))
        if needs_launcher(args.nproc, args.nnodes, args.claim_gpus):
            return launch_torchrun(args.nproc, _forwarded_args(args), args.nnodes, args.claim_gpus)
        return _train(cfg, args)


def _train(cfg, args: argparse.Namespace) -> int:
    from hqm.engine.distributed import build_dist_env, shutdown
    from hqm.engine.train import run_training

    env = build_dist_env(args.device, cfg.train.threads_per_rank)
    try:
        run_training(cfg, args.out, env)
    finally:
        shutdown(env)
    return 0
