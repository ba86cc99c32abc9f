"""How much does the synthetic test split alone move mAP? Checkpoints scored on disjoint slices.

Draws one large synthetic HICO-DET test split with the run's own dataset settings (its root's
``.hqm-synthetic.json``, ``num_test`` replaced; the training split, which the checkpoints learnt
from, is drawn identically first), predicts it once per checkpoint, then scores every disjoint slice
of each --sizes (QPIC protocol, Default, category scope ``dataset``: the in-training metric) and
prints, per size, each checkpoint's Full mAP per slice and, with two checkpoints, the second minus
the first per slice (docs/demo.md, "The test split"). The first slice of size N is the test split
``num_test: N`` draws.

    python bench/split_noise.py --run RUN --checkpoints RUN/ep12.pth RUN/checkpoint_last.pth
    python bench/split_noise.py --run RUN --checkpoints RUN/checkpoint_last.pth --sizes 600 1200

RUN is a run folder of synthetic HICO-DET (its ``run_config.yaml`` gives the model and the
dataset). A checkpoint is any file with a ``model`` state dict: ``checkpoint_last.pth``, or a copy
of ``RUN/state/last.pth`` taken while training (e.g. when ``train.log`` prints "epoch 12/15 done").
Such a state of a run with ``train.ema_decay`` > 0 holds the raw weights and their average; the
average is scored, as training scores it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import torch

from hqm.config import EvalConfig, load_run_config
from hqm.engine.distributed import build_dist_env
from hqm.engine.inference import predict_shard
from hqm.engine.train import build_components
from hqm.evaluation.run import evaluate_dataset

EVAL = EvalConfig(hico_protocols=["qpic"], hico_settings=["default"], batch_size=32, category_scope="dataset")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run folder with run_config.yaml (synthetic HICO-DET)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="one or two files with a 'model' entry")
    p.add_argument("--num-test", type=int, default=4800, help="images in the large test split")
    p.add_argument("--sizes", type=int, nargs="+", default=[600, 1200, 2400, 4800])
    p.add_argument("--work", default="bench_split_noise", help="folder for the large split and the slices")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if any(size <= 0 or args.num_test % size for size in args.sizes):
        p.error(f"--sizes must divide --num-test {args.num_test}")
    return args


def make_large_split(run_root: Path, num_test: int, out: Path) -> None:
    """The run's synthetic dataset again, with ``num_test`` test images (kept if already there)."""
    marker = json.loads((run_root / ".hqm-synthetic.json").read_text(encoding="utf-8"))
    if marker.get("format") != "hico" or marker.get("hard_test"):
        raise SystemExit(f"{run_root}: not a plain synthetic HICO-DET root")
    if (out / ".hqm-synthetic.json").is_file():
        return
    settings = {**marker["config"], "num_test": num_test}
    options = [arg for key, value in settings.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    subprocess.run(["hqm", "make-synthetic", "--format", "hico", "--out", str(out), *options], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def slice_root(large: Path, entries: list, size: int, index: int, work: Path) -> Path:
    """A dataset root holding slice ``index`` of ``size`` test images (images linked, not copied)."""
    root = work / "slices" / f"{size}_{index}"
    if not root.is_dir():
        (root / "annotations").mkdir(parents=True)
        for name in ("corre_hico.npy", "known_objects_test.json", "trainval_hico.json"):
            shutil.copy(large / "annotations" / name, root / "annotations" / name)
        chunk = entries[index * size : (index + 1) * size]
        (root / "annotations" / "test_hico.json").write_text(json.dumps(chunk), encoding="utf-8")
        os.symlink(large / "images", root / "images")
    return root


def scored_weights(payload: dict) -> dict:
    """The weights training evaluates: a state's moving average when it has one, else ``model``."""
    average = payload.get("average")
    return average["module"] if average else payload["model"]


def score_slices(cfg, checkpoint: Path, large: Path, sizes: list[int], work: Path) -> dict[int, list[float]]:
    """Full mAP (%) of ``checkpoint`` on every slice of each size."""
    env = build_dist_env("cpu")
    comps = build_components(cfg)
    comps.model.load_state_dict(scored_weights(torch.load(checkpoint, map_location="cpu", weights_only=False)))
    preds = [p for _, p in sorted(predict_shard(comps.model, comps.test_set, comps.collate, env, 32), key=lambda x: x[0])]
    entries = json.loads((large / "annotations" / "test_hico.json").read_text(encoding="utf-8"))
    scores = {}
    for size in sizes:
        scores[size] = []
        for index in range(len(preds) // size):
            root = slice_root(large, entries, size, index, work)
            metrics = evaluate_dataset("hico", root, preds[index * size : (index + 1) * size], EVAL, per_category=False)
            scores[size].append(100 * metrics["hico"]["qpic"]["default"]["mAP"])
    return scores


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work).resolve()
    cfg = load_run_config(Path(args.run) / "run_config.yaml")
    large = work / f"synthetic_hico_{args.num_test}"
    make_large_split(Path(cfg.dataset.root), args.num_test, large)
    cfg = dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, root=str(large)))
    scores = [score_slices(cfg, Path(c), large, args.sizes, work) for c in args.checkpoints]
    for size in args.sizes:
        for checkpoint, by_size in zip(args.checkpoints, scores):
            values = by_size[size]
            spread = f"sd {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            print(f"n={size:<5} {Path(checkpoint).name:<22} " + " ".join(f"{v:5.1f}" for v in values) + f"  {spread}")
        if len(scores) == 2:
            diffs = [b - a for a, b in zip(scores[0][size], scores[1][size])]
            print(f"n={size:<5} {'second - first':<22} " + " ".join(f"{d:+5.1f}" for d in diffs)
                  + f"  max |diff| {max(map(abs, diffs)):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
