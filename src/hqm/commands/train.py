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
    parser.set_defaults(func=run)


def _forwarded_args(args: argparse.Namespace) -> list[str]:
    return ["train", "--config", args.config, "--out", args.out, "--device", args.device]


def run(args: argparse.Namespace) -> int:
    from hqm.config import load_run_config
    from hqm.engine.distributed import build_dist_env, launch_torchrun, shutdown

    cfg = load_run_config(args.config)  # validate before launching anything
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_torchrun(args.nproc, _forwarded_args(args))

    from hqm.engine.train import run_training

    env = build_dist_env(args.device, cfg.train.threads_per_rank)
    try:
        run_training(cfg, args.out, env)
    finally:
        shutdown(env)
    return 0
