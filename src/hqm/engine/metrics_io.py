"""What a run writes about itself: log.jsonl, curves.csv, train_summary.json (training) and
metrics_{last,best}.json + headline_{last,best}.json (``hqm evaluate``). Contract: docs/protocol.md."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from hqm.io import atomic_write, write_json


def format_block(fmt: str, result: dict) -> dict:
    """``{"hico": ...}`` / ``{"vcoco": ...}`` from what ``evaluate_dataset`` returned."""
    if fmt in result and isinstance(result[fmt], dict):
        return {fmt: result[fmt]}
    return {fmt: result}


def _strip_per_category(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_per_category(v) for k, v in node.items() if k != "per_category"}
    return node


def log_line(record: dict, fmt: str) -> dict:
    """One log.jsonl line: epoch, lr, train_* losses, selection_map, test scalars, time, images/s."""
    line = {k: v for k, v in record.items() if k != "test"}
    if record.get("test") is not None:
        line["test"] = _strip_per_category(record["test"].get(fmt, {}))
    return line


def write_log(path: str | Path, history: list[dict], fmt: str) -> None:
    """Rewrite log.jsonl atomically from the history (so a resumed run never duplicates lines)."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for record in history:
            handle.write(json.dumps(log_line(record, fmt), allow_nan=True) + "\n")


def curve_column(train_key: str) -> str:
    """``train_loss`` -> ``loss``; ``train_loss_obj_ce`` -> ``loss_obj_ce``;
    ``train_gbs_loss_obj_ce`` -> ``loss_gbs_obj_ce`` (hard-stream terms keep their stream name)."""
    name = train_key.removeprefix("train_")
    return name if name.startswith("loss") else "loss_" + name.replace("_loss", "", 1)


def write_curves(path: str | Path, history: list[dict]) -> None:
    """curves.csv, wide: ``epoch,lr,loss,loss_<component>...,map`` (map in percent, empty where
    the epoch was not evaluated; a loss term absent from an epoch is empty too)."""
    keys = sorted({k for h in history for k in h if k.startswith("train_") and k != "train_loss"})
    columns = ["epoch", "lr", "loss", *[curve_column(k) for k in keys], "map"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for h in history:
        score = h.get("selection_map")
        row = [h["epoch"], h["lr"], h.get("train_loss"), *[h.get(k) for k in keys],
               100.0 * score if score is not None else None]  # fmt: skip
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())


def write_summary(path: str | Path, summary: dict) -> None:
    write_json(path, summary)


# ---------------------------------------------------------------------------------------------
# hqm evaluate
# ---------------------------------------------------------------------------------------------


def _get(node: Any, *path: str) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _percent(value: Any, scale: float) -> float | None:
    return float(value) * scale if isinstance(value, int | float) and math.isfinite(value) else None


def headline(block: dict) -> dict[str, float]:
    """Flat percent values for ``dvc metrics``: HICO-DET ``hico_<setting>_{full,rare,non_rare}``
    (official protocol) and ``hico_qpic_{full,rare,non_rare}``; V-COCO ``vcoco_role_ap_s1``,
    ``vcoco_role_ap_s2`` (24 reported pairs), ``vcoco_agent_ap``, ``vcoco_qpic_map``. Only what
    was computed appears."""
    out: dict[str, float | None] = {}
    parts = (("full", "mAP"), ("rare", "mAP rare"), ("non_rare", "mAP non-rare"))
    for setting in ("default", "known_object"):
        for name, key in parts:
            out[f"hico_{setting}_{name}"] = _percent(_get(block, "hico", "official", setting, key), 100.0)
    for name, key in parts:
        out[f"hico_qpic_{name}"] = _percent(_get(block, "hico", "qpic", "default", key), 100.0)
    official = _get(block, "vcoco", "official") or {}
    out["vcoco_role_ap_s1"] = _percent(official.get("role_ap_s1_24"), 1.0)  # already percent
    out["vcoco_role_ap_s2"] = _percent(official.get("role_ap_s2_24"), 1.0)
    out["vcoco_agent_ap"] = _percent(official.get("agent_ap"), 1.0)
    out["vcoco_qpic_map"] = _percent(_get(block, "vcoco", "qpic", "mAP_all"), 100.0)
    return {k: v for k, v in out.items() if v is not None}


def checkpoint_label(path: str | Path) -> str:
    """``last`` / ``best`` from the file name the engine gives them (anything else: ``last``)."""
    return "best" if Path(path).stem.endswith("_best") else "last"
