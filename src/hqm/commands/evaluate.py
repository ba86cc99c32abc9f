"""``hqm evaluate``: every protocol of the ``evaluation:`` section on a checkpoint (ours, or a
released QPIC / HQM one) -> metrics JSON, optional headline JSON and V-COCO official pickle."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset's test split (metrics JSON, headline, V-COCO pickle)",
        description="Computes what the evaluation section asks for (default: every published "
        "protocol). A checkpoint_best.pth was selected on the test split and is labelled so.",
    )
    parser.add_argument("--checkpoint", required=True, help="RUN/checkpoint_{last,best}.pth or a released file")
    parser.add_argument("--dataset-root", required=True, help="dataset folder (docs/architecture.md layout)")
    parser.add_argument("--format", required=True, choices=("hico", "vcoco"))
    parser.add_argument("--out", required=True, help="metrics JSON to write (RUN/metrics_{last,best}.json)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--eval-json", help="the evaluation: section as a JSON object")
    source.add_argument("--eval-config", help="YAML file: params.yaml-like (its evaluation: section) or the section itself")
    parser.add_argument("--headline-out", help="also write a flat JSON of percent values (dvc metrics)")
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
    for flag in ("eval_json", "eval_config", "headline_out", "vcoco_pickle", "released"):
        value = getattr(args, flag)
        if value:
            out += ["--" + flag.replace("_", "-"), value]
    return out + (["--unsafe-pickle"] if args.unsafe_pickle else [])


def load_eval_config(eval_json: str | None, eval_config: str | None):
    """The EvalConfig of ``--eval-json`` / ``--eval-config`` (defaults when neither is given)."""
    import json

    import yaml

    from hqm.config import EvalConfig, from_dict
    from hqm.errors import HqmError

    if eval_json is not None:
        try:
            data = json.loads(eval_json)
        except json.JSONDecodeError as exc:
            raise HqmError(f"--eval-json: not JSON ({exc.msg} at character {exc.pos})") from None
        where = "--eval-json"
    elif eval_config is not None:
        try:
            with open(eval_config, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise HqmError(f"{eval_config}: malformed YAML: {str(exc).splitlines()[0]}") from None
        where = eval_config
        if isinstance(data, dict) and isinstance(data.get("evaluation"), dict):
            data, where = data["evaluation"], f"{eval_config}: evaluation"
    else:
        return EvalConfig()
    if not isinstance(data, dict):
        raise HqmError(f"{where}: expected a mapping (the evaluation: section)")
    return from_dict(EvalConfig, data, where)


def run(args: argparse.Namespace) -> int:
    from hqm.engine.distributed import build_dist_env, launch_torchrun, needs_launcher, shutdown
    from hqm.engine.run_lock import check_outputs_distinct
    from hqm.errors import HqmError

    if args.vcoco_pickle and args.format != "vcoco":
        raise HqmError(f"--vcoco-pickle {args.vcoco_pickle}: only for --format vcoco")
    check_outputs_distinct({"--checkpoint": args.checkpoint},
                           {"--out": args.out, "--vcoco-pickle": args.vcoco_pickle, "--headline-out": args.headline_out})
    eval_cfg = load_eval_config(args.eval_json, args.eval_config)  # validate before launching
    if needs_launcher(args.nproc, args.nnodes):
        return launch_torchrun(args.nproc, _forwarded_args(args), args.nnodes)

    from hqm.engine import provenance
    from hqm.engine.distributed import all_gather_objects
    from hqm.engine.inference import evaluate_checkpoint
    from hqm.engine.metrics_io import headline
    from hqm.io import write_json

    env = build_dist_env(args.device)
    try:
        hosts = all_gather_objects(provenance.this_host(), env)
        metrics = evaluate_checkpoint(args.checkpoint, args.dataset_root, args.format, env, eval_cfg,
                                      released=args.released, vcoco_pickle=args.vcoco_pickle,
                                      unsafe_pickle=args.unsafe_pickle)
        if env.is_main:
            metrics["provenance"] = provenance.collect(metrics.get("seed"), env.world_size, hosts)
            metrics["evaluation"] = _plain(eval_cfg)
            metrics.update(_training_record(args.checkpoint, args.released))
            if args.headline_out:
                write_json(args.headline_out, {"checkpoint": metrics["checkpoint"], **headline(metrics)})
            write_json(args.out, metrics)
    finally:
        shutdown(env)
    return 0


def _plain(obj) -> dict:
    from hqm.config import to_dict

    return to_dict(obj)


def _training_record(checkpoint: str, released: str | None) -> dict:
    """``{"training": {selection, provenance, wall_time_s}}`` from the run's train_summary.json
    beside our checkpoint (nothing for a released file or a checkpoint moved elsewhere)."""
    from pathlib import Path

    from hqm.io import read_json

    path = Path(checkpoint).with_name("train_summary.json")
    if released or not path.is_file():
        return {}
    summary = read_json(path)
    return {"training": {k: summary.get(k) for k in ("selection", "provenance", "wall_time_s")}}
