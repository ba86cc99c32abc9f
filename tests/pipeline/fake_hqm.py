"""A stand-in ``hqm`` for graph tests: writes the files the contract names, in milliseconds.

``resolve-config`` and ``grid`` (the pipeline's own glue) run for real. Every other command writes
its declared outputs with contents derived from its arguments (an evaluation's metrics from the
``evaluation`` settings it was given), and appends its argv as one JSON line to
``$FAKE_HQM_LOG`` when set. Installed as ``hqm`` on PATH by tests/pipeline/conftest.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml


def _opt(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _write(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _evaluation(argv: list[str]) -> str:
    if (raw := _opt(argv, "--eval-json")) is not None:
        return json.dumps(json.loads(raw), sort_keys=True)
    params = yaml.safe_load(Path(_opt(argv, "--eval-config")).read_text())
    return json.dumps(params.get("evaluation", params), sort_keys=True)


def fake(argv: list[str]) -> None:
    cmd, key = argv[0], " ".join(argv)
    if cmd == "make-synthetic":
        _write(Path(_opt(argv, "--out")) / "annotations" / "trainval_hico.json", key)
    elif cmd in ("pretrain-detr", "convert-weights"):
        _write(_opt(argv, "--out"), key)
        _write(f"{_opt(argv, '--out')}.json", key)
    elif cmd == "train":
        out = Path(_opt(argv, "--out"))
        cfg = yaml.safe_load(Path(_opt(argv, "--config")).read_text())
        config_text = Path(_opt(argv, "--config")).read_text()
        for name in ("checkpoint_last.pth", "log.jsonl", "config.yaml", "train_summary.json"):
            _write(out / name, config_text)
        _write(out / "curves.csv", "epoch,lr,loss,map\n0,0.1,1.0,\n")
        if cfg["train"].get("select_best"):
            _write(out / "checkpoint_best.pth", config_text)
    elif cmd == "evaluate":
        text = json.dumps({"checkpoint": _opt(argv, "--checkpoint"), "evaluation": _evaluation(argv)})
        _write(_opt(argv, "--out"), text)
        _write(_opt(argv, "--headline-out"), text)
        if _opt(argv, "--vcoco-pickle"):
            _write(_opt(argv, "--vcoco-pickle"), text)
    elif cmd == "tables":
        for ext in ("md", "tex", "csv"):
            _write(Path(_opt(argv, "--out-dir")) / f"{_opt(argv, '--dataset')}.{ext}", key)
    elif cmd == "plots":
        stem = Path(_opt(argv, "--out-dir")) / _opt(argv, "--dataset")
        for name in ("curves.png", "curves.pdf", "categories.png", "categories.pdf", "curves.csv"):
            _write(f"{stem}_{name}", key)
    elif cmd == "visualize":
        _write(_opt(argv, "--out"), key)
    else:
        raise SystemExit(f"fake hqm: no stand-in for {cmd}")


def main() -> int:
    argv = sys.argv[1:]
    if log := os.environ.get("FAKE_HQM_LOG"):
        with open(log, "a") as handle:
            handle.write(json.dumps(argv) + "\n")
    if argv[0] in ("resolve-config", "grid"):
        from hqm.cli import main as real

        return real(argv)
    fake(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
