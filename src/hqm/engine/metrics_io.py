"""metrics.json and log.jsonl of a training run (schema: docs/architecture.md, "Metrics JSON")."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hqm.config import RunConfig
from hqm.io import atomic_write, write_json


def format_block(fmt: str, result: dict) -> dict:
    """``{"hico": ...}`` / ``{"vcoco": ...}`` from what ``evaluate_dataset`` returned."""
    if fmt in result and isinstance(result[fmt], dict):
        return {fmt: result[fmt]}
    return {fmt: result}


def headline(fmt: str, block: dict) -> float | None:
    """The number a "best" epoch is chosen on: HICO Default mAP, V-COCO role AP S1 (24 pairs)."""
    inner = block.get(fmt, {})
    candidates = (
        [("official", "default", "mAP"), ("qpic", "default", "mAP")]
        if fmt == "hico"
        else [("official", "role_ap_s1_24"), ("qpic", "mAP_all")]
    )
    for path in candidates:
        node: Any = inner
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, int | float) and math.isfinite(node):
            return float(node)
    return None


def _summary(block: dict, fmt: str) -> dict:
    """Scalars only (drop per-category tables) for the per-epoch log line."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "per_category"}
        return node

    return strip(block.get(fmt, {}))


def build_metrics(cfg: RunConfig, history: list[dict]) -> dict:
    """metrics.json content: the last evaluated epoch, plus "best" only when configured."""
    fmt = cfg.dataset.format
    evaluated = [h for h in history if h.get("test") is not None]
    out: dict[str, Any] = {
        "dataset": cfg.dataset_name,
        "format": fmt,
        "variant": cfg.variant,
        "method": cfg.method,
        "seed": cfg.seed,
        "epoch": history[-1]["epoch"] if history else 0,
        "selected_on_test": False,
    }
    if evaluated:
        out.update(evaluated[-1]["test"])
        out["epoch"] = evaluated[-1]["epoch"]
    if cfg.train.select_best and evaluated:
        scored = [(headline(fmt, h["test"]), h) for h in evaluated]
        scored = [(s, h) for s, h in scored if s is not None]
        if scored:
            _, best = max(scored, key=lambda sh: (sh[0], -sh[1]["epoch"]))  # earliest of ties
            out["best"] = {"epoch": best["epoch"], "selected_on_test": True, **best["test"]}
    return out


def log_line(record: dict, fmt: str) -> dict:
    """One log.jsonl line (QPIC log.txt spirit): train_* losses, lr, test scalars, time, images/s."""
    line = {k: v for k, v in record.items() if k != "test"}
    if record.get("test") is not None:
        line["test"] = _summary(record["test"], fmt)
    return line


def write_log(path: str | Path, history: list[dict], fmt: str) -> None:
    """Rewrite log.jsonl atomically from the history (so a resumed run never duplicates lines)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for record in history:
            handle.write(json.dumps(log_line(record, fmt), allow_nan=True) + "\n")


def write_metrics(path: str | Path, metrics: dict) -> None:
    write_json(path, metrics)
