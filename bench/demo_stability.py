"""Does the CPU demo hold on another machine? Its variants on synthetic HICO-DET, several seeds and threads.

Issue #15's criteria for the demo settings in params.yaml (docs/demo.md):
  * every run's curve has flattened: the last two in-training evaluations within --max-diff points;
  * every run reaches --min-map (HICO-DET Full, QPIC protocol, percent);
  * each variant's seeds' final mAPs have a standard deviation <= --max-std points;
and all of it also on a run with another thread count (other float rounding; the first variant's).

It runs the real commands: ``hqm make-synthetic`` and, when the runs start from the DETR of the
``pretrain`` section, ``hqm pretrain-detr`` and ``hqm convert-weights`` (once; a weights file already
under --work/data/weights is kept), then per run ``hqm resolve-config`` and
``hqm train --nproc 1`` (each of --variants, default QPIC; synthetic_hico), --jobs runs at a time, each under a timeout. It reads
each run's per-evaluation mAP from ``curves.csv`` (column ``map``, percent), else
``train_summary.json`` (``selection``), else ``log.jsonl`` (``test.qpic.default.mAP``, a fraction),
prints one row per run and each variant's seeds' mean +- std, and exits 1 when a criterion fails.

    python bench/demo_stability.py                       # seeds 1 2 3 at 1 thread + seed 1 at 2 threads
    python bench/demo_stability.py --variants qpic gbs amm hqm --hard-split --jobs 15   # all of #15, 16 cores
    python bench/demo_stability.py --work /tmp/stab --seeds 1 2 --extra-threads 0 --jobs 1
    python bench/demo_stability.py --work /tmp/stab --reuse   # re-read finished runs, train nothing
    python bench/demo_stability.py --work /tmp/stab --skip-finished   # train only what is missing
    python bench/demo_stability.py --work /tmp/hard_gbs --variants gbs --extra-threads 0 --hard-split

--hard-split also writes the all-hard test split (``hqm make-synthetic --hard-test``: same training
split, other scenes, every one hard) and evaluates each run's last checkpoint on it, then prints
Full / Rare on the plain and on the hard test split with the seeds' mean +- std (issue #15.3).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATASET = "synthetic_hico"


@dataclass
class Run:
    variant: str
    seed: int
    threads: int
    path: Path
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, mAP %)
    rare: float | None = None  # last evaluation's Rare mAP, percent (log.jsonl only)
    wall: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.variant}-seed{self.seed}-t{self.threads}"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default="params.yaml", help="the params file whose demo settings are measured")
    p.add_argument("--work", default="bench_demo_stability", help="folder for the dataset and the runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds trained with 1 thread")
    p.add_argument("--extra-threads", type=int, default=2,
                   help="also train the first seed with this many threads (other rounding); 0 = skip")
    p.add_argument("--variants", nargs="+", default=["qpic"], choices=("qpic", "gbs", "amm", "hqm"),
                   help="variants trained (each seed); the --extra-threads run is the first one's")
    p.add_argument("--jobs", type=int, default=2, help="1-thread trainings at a time")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed per training")
    p.add_argument("--min-map", type=float, default=30.0)
    p.add_argument("--max-diff", type=float, default=2.0)
    p.add_argument("--max-std", type=float, default=3.0)
    p.add_argument("--reuse", action="store_true", help="only read runs already in --work")
    p.add_argument("--hard-split", action="store_true",
                   help="also evaluate every run on the all-hard test split and print that table")
    p.add_argument("--skip-finished", action="store_true",
                   help="do not retrain a run whose folder already holds a final checkpoint")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    return args


def write_params(src: Path, dst: Path, root: Path, threads: int) -> None:
    """A copy of ``src`` with the data (dataset root, DETR weights) under --work and
    ``train.threads_per_rank``."""
    params = yaml.safe_load(src.read_text(encoding="utf-8"))
    params["experiment"]["data_dir"] = str(root.parent)
    params["datasets"][DATASET]["root"] = str(root)
    params["train"]["threads_per_rank"] = threads
    dst.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def prepare_weights(params_file: Path) -> None:
    """The DETR the runs start from, as the pipeline makes it: ``hqm pretrain-detr`` when
    ``experiment.backbone_weights`` names ``pretrain.name`` (kept if already there, e.g. copied in
    to share one pretraining between benches), then ``hqm convert-weights`` for both head layouts."""
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    name, data = params["experiment"]["backbone_weights"], params["experiment"]["data_dir"]
    if name == "none":
        return
    if name != params["pretrain"]["name"]:
        raise SystemExit(f"{params_file}: experiment.backbone_weights {name!r} must be none or pretrain.name")
    detr = Path(data) / "weights" / f"{name}.pth"
    if not detr.is_file():
        subprocess.run(["hqm", "pretrain-detr", "--params", str(params_file), "--out", str(detr)], check=True)
    for layout in ("qpic", "hqm"):
        out = Path(data) / "weights" / f"{name}_hico_{layout}.pth"
        if not out.is_file():
            subprocess.run(["hqm", "convert-weights", "--detr", str(detr), "--dataset-format", "hico",
                            "--layout", layout, "--out", str(out)], check=True)  # fmt: skip


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _from_curves_csv(path: Path) -> list[tuple[int, float]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    curve = [(int(float(r["epoch"])), _number(r.get("map"))) for r in rows if r.get("epoch")]
    return [(e, m) for e, m in curve if m is not None]


def _from_summary(path: Path) -> list[tuple[int, float]]:
    """``selection`` of train_summary.json: values as {epoch: v}, [{epoch, value}] or [v | null]."""
    values = json.loads(path.read_text(encoding="utf-8")).get("selection", {}).get("values")
    if isinstance(values, dict):
        pairs = [(int(k), _number(v)) for k, v in values.items()]
    elif isinstance(values, list) and values and all(isinstance(v, dict) for v in values):
        pairs = [(int(v["epoch"]), _number(v.get("value", v.get("map")))) for v in values]
    elif isinstance(values, list):
        pairs = [(i + 1, _number(v)) for i, v in enumerate(values)]
    else:
        return []
    pairs = sorted((e, v) for e, v in pairs if v is not None)
    if pairs and max(v for _, v in pairs) <= 1.0:  # a fraction, not percent
        pairs = [(e, 100 * v) for e, v in pairs]
    return pairs


def _qpic_default(test: dict) -> dict:
    block = test.get("hico", test)
    return block.get("qpic", {}).get("default", {}) or block.get("official", {}).get("default", {})


def _from_log(path: Path) -> tuple[list[tuple[int, float]], float | None]:
    curve, rare = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if isinstance(record.get("map"), int | float):
            curve.append((int(record["epoch"]), float(record["map"])))
            continue
        if not isinstance(record.get("test"), dict):
            continue
        scores = _qpic_default(record["test"])
        if _number(scores.get("mAP")) is not None:
            curve.append((int(record["epoch"]), 100 * float(scores["mAP"])))
            rare = 100 * float(scores.get("mAP rare", float("nan")))
    return curve, rare


def read_curve(run: Path) -> tuple[list[tuple[int, float]], float | None]:
    """Per-evaluation (epoch, mAP %) of a finished run, and the last Rare mAP when the log has it."""
    rare = None
    if (run / "log.jsonl").is_file():
        curve, rare = _from_log(run / "log.jsonl")
    else:
        curve = []
    for name, reader in (("curves.csv", _from_curves_csv), ("train_summary.json", _from_summary)):
        if (run / name).is_file():
            other = reader(run / name)
            if other:
                return other, rare
    return curve, rare


def _commands(run: Run, params: Path) -> list[list[str]]:
    config = str(run.path / "run_config.yaml")
    return [
        ["hqm", "resolve-config", "--params", str(params), "--dataset", DATASET, "--variant", run.variant,
         "--seed", str(run.seed), "--out", config],
        ["hqm", "train", "--config", config, "--out", str(run.path), "--nproc", "1"],
    ]  # fmt: skip


def finished(run: Path) -> bool:
    return any((run / name).is_file() for name in ("checkpoint.pth", "checkpoint_last.pth"))


def train_all(runs: list[Run], params_for: dict[int, Path], args: argparse.Namespace) -> None:
    """Train ``runs``: the 1-thread ones --jobs at a time, then each multi-thread one alone."""
    pending = sorted((r for r in runs if not (args.skip_finished and finished(r.path))), key=lambda r: r.threads)
    active: dict[str, tuple[Run, subprocess.Popen, float]] = {}
    while pending or active:
        room = args.jobs if all(r.threads == 1 for r, _, _ in active.values()) else 1
        while pending and len(active) < room and (pending[0].threads == 1 or not active):
            run = pending.pop(0)
            run.path.mkdir(parents=True, exist_ok=True)
            resolve, train = _commands(run, params_for[run.threads])
            subprocess.run(resolve, check=True)
            log = (run.path / "train.log").open("w", encoding="utf-8")
            proc = subprocess.Popen(["timeout", str(args.timeout), *train], stdout=log, stderr=subprocess.STDOUT)
            active[run.label] = (run, proc, time.perf_counter())
            print(f"started {run.label}: {' '.join(train)}", file=sys.stderr)
            if run.threads > 1:
                break
        time.sleep(2)
        for label, (run, proc, t0) in list(active.items()):
            if proc.poll() is not None:
                run.wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    run.error = f"hqm train exited {proc.returncode} (see {run.path / 'train.log'})"
                print(f"finished {label} in {run.wall:.0f} s (exit {proc.returncode})", file=sys.stderr)
                del active[label]


def judge(runs: list[Run], args: argparse.Namespace) -> bool:
    """Print one row per run and each variant's seeds' mean +- std; True iff every criterion holds."""
    ok = True
    print(f"{'run':<18} {'mAP curve (epoch:%)':<44} {'last2':>13} {'|diff|':>6} {'Rare':>5} {'wall s':>6}  verdict")
    for run in runs:
        run.curve, run.rare = read_curve(run.path)
        curve = " ".join(f"{e}:{m:.1f}" for e, m in run.curve)
        if run.error or len(run.curve) < 2:
            ok = False
            print(f"{run.label:<18} {curve:<44} FAIL: {run.error or 'fewer than two evaluations'}")
            continue
        (_, a), (_, b) = run.curve[-2:]
        diff = abs(b - a)
        reasons = [f"|diff| > {args.max_diff}"] * (diff > args.max_diff) + [f"mAP < {args.min_map}"] * (b < args.min_map)
        ok = ok and not reasons
        rare = "-" if run.rare is None else f"{run.rare:.1f}"
        wall = "-" if run.wall is None else f"{run.wall:.0f}"
        print(f"{run.label:<18} {curve:<44} {a:6.1f} {b:6.1f} {diff:6.1f} {rare:>5} {wall:>6}  "
              f"{'FAIL: ' + ', '.join(reasons) if reasons else 'pass'}")  # fmt: skip
    for variant in args.variants:
        finals = [r.curve[-1][1] for r in runs if r.variant == variant and r.threads == 1 and r.curve and not r.error]
        if len(finals) >= 2:
            mean, std = statistics.mean(finals), statistics.stdev(finals)
            verdict = "pass" if std <= args.max_std else f"FAIL: std > {args.max_std}"
            ok = ok and std <= args.max_std
            print(f"{variant}, seeds at 1 thread: final mAP {mean:.1f} +- {std:.1f} (sample std, n={len(finals)})  {verdict}")
    print("ALL CRITERIA HOLD" if ok else "SOME CRITERION FAILS")
    return ok


# the in-training selection protocol (QPIC, Default, the dataset's own categories), as a JSON section
HARD_EVAL = {"hico_protocols": ["qpic"], "hico_settings": ["default"], "max_hois": 100, "batch_size": 8,
             "category_scope": "dataset"}


def _full_rare(metrics: Path) -> tuple[float, float]:
    scores = json.loads(metrics.read_text(encoding="utf-8"))["hico"]["qpic"]["default"]
    return 100 * scores["mAP"], 100 * scores["mAP rare"]


def hard_split(runs: list[Run], params: Path, work: Path, reuse: bool) -> None:
    """Evaluate each run's last checkpoint on the plain and the all-hard test split; print both."""
    hard_root = work / "data" / f"{DATASET}_hard"
    if not reuse and not (hard_root / ".hqm-synthetic.json").is_file():
        subprocess.run(["hqm", "make-synthetic", "--format", "hico", "--params", str(params), "--hard-test",
                        "--out", str(hard_root)], check=True)  # fmt: skip
    rows = []
    for run in (r for r in runs if r.threads == 1 and finished(r.path)):
        for split, root in (("plain", work / "data" / DATASET), ("hard", hard_root)):
            out = run.path / f"metrics_{split}.json"
            if not reuse and not out.is_file():
                subprocess.run(["hqm", "evaluate", "--checkpoint", str(run.path / "checkpoint_last.pth"),
                                "--dataset-root", str(root), "--format", "hico", "--out", str(out),
                                "--eval-json", json.dumps(HARD_EVAL)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        if all((run.path / f"metrics_{split}.json").is_file() for split in ("plain", "hard")):
            rows.append((run.label, *_full_rare(run.path / "metrics_plain.json"), *_full_rare(run.path / "metrics_hard.json")))
    print(f"{'run':<18} {'plain Full':>10} {'plain Rare':>10} {'hard Full':>10} {'hard Rare':>10}")
    for label, *values in rows:
        print(f"{label:<18} " + " ".join(f"{v:10.1f}" for v in values))
    for variant in dict.fromkeys(r.variant for r in runs):
        mine = [values for label, *values in rows if label.startswith(f"{variant}-")]
        if len(mine) >= 2:
            columns = list(zip(*mine))
            print(f"{variant + ' mean+-std':<18} "
                  + " ".join(f"{statistics.mean(c):5.1f}+-{statistics.stdev(c):3.1f}" for c in columns))


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(args.work).resolve()
    root = work / "data" / DATASET
    runs = [Run(v, s, 1, work / "runs" / f"{v}-seed{s}-t1") for v in args.variants for s in args.seeds]
    if args.extra_threads > 0:
        first, seed, threads = args.variants[0], args.seeds[0], args.extra_threads
        runs.append(Run(first, seed, threads, work / "runs" / f"{first}-seed{seed}-t{threads}"))
    if not args.reuse:
        work.mkdir(parents=True, exist_ok=True)
        params_for = {}
        for threads in sorted({r.threads for r in runs}):
            params_for[threads] = work / f"params_t{threads}.yaml"
            write_params(Path(args.params), params_for[threads], root, threads)
        if not (root / ".hqm-synthetic.json").is_file():
            subprocess.run(["hqm", "make-synthetic", "--format", "hico", "--params", str(params_for[1] if 1 in
                            params_for else next(iter(params_for.values()))), "--out", str(root)], check=True)  # fmt: skip
        prepare_weights(next(iter(params_for.values())))
        train_all(runs, params_for, args)
    print(f"# {' '.join(args.variants)} on {DATASET}, params {args.params}, host {os.uname().nodename}, {os.cpu_count()} CPUs")
    ok = judge(runs, args)
    if args.hard_split:
        hard_split(runs, work / "params_t1.yaml", work, args.reuse)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
