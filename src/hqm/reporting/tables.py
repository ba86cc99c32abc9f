"""Result tables in the papers' layout, built from metrics JSON files only (rendering: table_render).

One table per dataset. HICO-DET: Default Full / Rare / Non-rare and Known-Object Full / Rare /
Non-rare mAP; V-COCO: role AP S1 / S2 (24 action-roles) and agent AP; everything in percent. Rows
are grouped per backbone: the published rows (with their citation key), then ours per variant and
checkpoint (``last`` / ``best``, as each metrics file labels itself) as mean ± sample std over
seeds, each followed by its difference to the published row of the same method and backbone --
only on the real datasets; a ``synthetic`` table has no published rows and no differences.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

from hqm.errors import HqmError
from hqm.io import read_json
from hqm.reporting.paper import (
    BACKBONE_LABELS,
    HICO_METRICS,
    VCOCO_DETR_NOTE,
    VCOCO_METRICS,
    PublishedResult,
    backbone_label,
    find_published,
    published_rows,
)

CHECKPOINTS = ("last", "best")
DATASET_TITLES = {"hico": "HICO-DET", "vcoco": "V-COCO"}
# Column groups of the papers' tables: (group title, metrics, column titles).
COLUMN_GROUPS = {
    "hico": (("Default", HICO_METRICS[:3], ("Full", "Rare", "Non-rare")),
             ("Known Object", HICO_METRICS[3:], ("Full", "Rare", "Non-rare"))),
    "vcoco": (("Role AP", VCOCO_METRICS[:2], ("S1", "S2")), ("Agent AP", VCOCO_METRICS[2:], ("",))),
}  # fmt: skip

RowKind = Literal["published", "ours", "delta"]


@dataclass
class TableRow:
    """One printed row. ``values``: metric -> (mean, sample std or None); missing = not available."""

    kind: RowKind
    method: str
    backbone: str
    values: dict[str, tuple[float, float | None]]
    variant: str | None = None  # ours and delta rows
    checkpoint: str | None = None  # ours and delta rows: "last" | "best"
    seeds: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)  # ours: the evaluated epoch of each seed's file
    cite: str | None = None  # published rows and the delta rows comparing with them
    flags: dict[str, str] = field(default_factory=dict)  # metric -> caveat (published rows)
    bold: set[str] = field(default_factory=set)  # metrics where this row holds the column's best


@dataclass
class Table:
    dataset: str
    dataset_format: str  # "hico" | "vcoco"
    synthetic: bool
    blocks: list[tuple[str, list[TableRow]]]  # (backbone, rows), in backbone order
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> tuple[str, ...]:
        return HICO_METRICS if self.dataset_format == "hico" else VCOCO_METRICS

    def rows(self) -> list[TableRow]:
        return [row for _, rows in self.blocks for row in rows]


# ---------------------------------------------------------------------------------------------
# Reading metrics
# ---------------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HqmError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def extract_hico(metrics: dict, where: str, prefer: str = "official") -> tuple[dict[str, float], str]:
    """HICO-DET metrics in percent and the protocol used for the Default setting.

    Default comes from the ``prefer``red protocol when present, else from the other one;
    Known-Object only exists in the official protocol. Evaluators write fractions.
    """
    hico = metrics.get("hico")
    if not isinstance(hico, dict):
        raise HqmError(f"{where}: no 'hico' section")
    out: dict[str, float] = {}
    official = hico.get("official") or {}
    default, protocol = None, None
    for name in (prefer, "qpic" if prefer == "official" else "official"):
        if default is None:
            default, protocol = (hico.get(name) or {}).get("default"), name
    if default is None:
        raise HqmError(f"{where}: hico has neither official.default nor qpic.default")
    for prefix, section in (("default", default), ("ko", official.get("known_object"))):
        if section is None:
            continue
        for suffix, key in (("full", "mAP"), ("rare", "mAP rare"), ("nonrare", "mAP non-rare")):
            if key in section:
                out[f"{prefix}_{suffix}"] = 100.0 * _number(section[key], f"{where}: hico.{prefix}.{key}")
    return out, protocol


def extract_vcoco(metrics: dict, where: str) -> dict[str, float]:
    """V-COCO role AP (24 action-roles) and agent AP in percent, as the official evaluation prints them."""
    official = (metrics.get("vcoco") or {}).get("official")
    if not isinstance(official, dict):
        raise HqmError(f"{where}: no 'vcoco.official' section")
    out = {}
    for name, key in (("role_ap_s1", "role_ap_s1_24"), ("role_ap_s2", "role_ap_s2_24"), ("agent_ap", "agent_ap")):
        if official.get(key) is not None:
            out[name] = _number(official[key], f"{where}: vcoco.official.{key}")
    return out


def load_runs(paths: list) -> list[tuple[str, dict]]:
    """Read metrics files; each must name its dataset, format, variant, method and seed."""
    runs = []
    for path in paths:
        data = read_json(path)
        if not isinstance(data, dict):
            raise HqmError(f"{path}: expected a JSON object")
        for key in ("dataset", "format", "variant", "method", "seed"):
            if key not in data:
                raise HqmError(f"{path}: missing key '{key}'")
        if data["format"] not in ("hico", "vcoco"):
            raise HqmError(f"{path}: format: {data['format']!r} is not 'hico' or 'vcoco'")
        if data.get("checkpoint", "last") not in CHECKPOINTS:
            raise HqmError(f"{path}: checkpoint: {data['checkpoint']!r} is not 'last' or 'best'")
        runs.append((str(path), data))
    return runs


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _our_rows(runs: list[tuple[str, dict]], fmt: str, backbone: str, hico_protocol: str,
              variant_order: list[str]) -> tuple[list[TableRow], set[str]]:
    """One row per (variant, checkpoint) with per-metric mean/std over seeds; the protocols used."""
    groups: dict[tuple[str, str], tuple[str, dict[int, dict[str, float]]]] = {}
    epochs: dict[tuple[str, str], list[int]] = {}
    protocols: set[str] = set()
    for path, data in runs:
        if fmt == "hico":
            values, protocol = extract_hico(data, path, hico_protocol)
            protocols.add(protocol)
        else:
            values = extract_vcoco(data, path)
        key = (data["variant"], data.get("checkpoint", "last"))
        method, seeds = groups.setdefault(key, (data["method"], {}))
        if method != data["method"]:
            raise HqmError(f"{path}: variant '{key[0]}' has method '{data['method']}', other seeds '{method}'")
        if data["seed"] in seeds:
            raise HqmError(f"{path}: seed {data['seed']} of '{key[0]}' ({key[1]}) appears twice")
        seeds[data["seed"]] = values
        if isinstance(data.get("epoch"), int) and not isinstance(data["epoch"], bool):
            epochs.setdefault(key, []).append(data["epoch"])
    order = list(variant_order) + sorted({v for v, _ in groups} - set(variant_order))
    rows = []
    for variant in order:
        for ckpt in CHECKPOINTS:
            if (variant, ckpt) not in groups:
                continue
            method, by_seed = groups[(variant, ckpt)]
            per_metric: dict[str, list[float]] = {}
            for seed in sorted(by_seed):
                for metric, value in by_seed[seed].items():
                    per_metric.setdefault(metric, []).append(value)
            values = {m: _mean_std(v) for m, v in per_metric.items()}
            rows.append(TableRow("ours", method, backbone, values, variant, ckpt, sorted(by_seed),
                                 sorted(epochs.get((variant, ckpt), []))))
    return rows, protocols


def _delta_row(row: TableRow, pub: PublishedResult) -> TableRow:
    values = {m: (row.values[m][0] - pub.values[m], None) for m in row.values if m in pub.values}
    return TableRow("delta", row.method, row.backbone, values, row.variant, row.checkpoint, row.seeds,
                    row.epochs, cite=pub.cite)


def _published_row(pub: PublishedResult) -> TableRow:
    return TableRow("published", pub.method, pub.backbone, {m: (v, None) for m, v in pub.values.items()},
                    cite=pub.cite, flags=dict(pub.flags))


def _mark_best(table: Table) -> None:
    """Bold the highest value of every column over the published and our rows (not the deltas).

    A column whose rows all tie (e.g. every Rare at 0.00) singles out nothing and stays plain.
    """
    for metric in table.metrics:
        scored = [(row.values[metric][0], row) for row in table.rows() if row.kind != "delta" and metric in row.values]
        if len({value for value, _ in scored}) > 1:
            best = max(value for value, _ in scored)
            for value, row in scored:
                if value == best:
                    row.bold.add(metric)


def _blocks(ours: list[TableRow], published: list[PublishedResult],
            backbone: str) -> list[tuple[str, list[TableRow]]]:
    """Rows per backbone: published rows, then ours, each followed by its difference row."""
    backbones = {backbone} | {pub.backbone for pub in published}
    ordered = sorted(backbones, key=lambda b: (list(BACKBONE_LABELS).index(b) if b in BACKBONE_LABELS else 99, b))
    blocks = []
    for bb in ordered:
        rows = [_published_row(pub) for pub in published if pub.backbone == bb]
        if bb == backbone:
            for row in ours:
                rows.append(row)
                pub = next((p for p in published if p.method == row.method and p.backbone == bb), None)
                if pub is not None:
                    rows.append(_delta_row(row, pub))
        blocks.append((bb, rows))
    return blocks


def build_table(
    runs: list[tuple[str, dict]],
    dataset: str,
    backbone: str = "resnet50",
    variant_order: list[str] | None = None,
    synthetic: bool = False,
    hico_protocol: str = "official",
) -> Table:
    """The table of ``dataset`` from its runs' metrics (every run must belong to that dataset).

    ``hico_protocol`` is the preferred protocol of the HICO-DET Default columns (official or qpic).
    """
    if not runs:
        raise HqmError(f"tables {dataset}: no metrics files given")
    for path, data in runs:
        if data["dataset"] != dataset:
            raise HqmError(f"{path}: dataset: {data['dataset']!r}, but the table is for {dataset!r}")
    formats = {d["format"] for _, d in runs}
    if len(formats) != 1:
        raise HqmError(f"{runs[0][0]}: dataset '{dataset}' has runs of formats {sorted(formats)}")
    fmt = formats.pop()
    ours, protocols = _our_rows(runs, fmt, backbone, hico_protocol, list(variant_order or []))
    published = [] if synthetic else published_rows(fmt)
    table = Table(dataset, fmt, synthetic, _blocks(ours, published, backbone))
    _mark_best(table)
    table.notes = _notes(table, protocols, backbone)
    return table


def _notes(table: Table, protocols: set[str], backbone: str) -> list[str]:
    unit = "mAP" if table.dataset_format == "hico" else "AP"
    notes = [f"{unit} in percent. Ours: mean ± sample std over n seeds; 'last' = final epoch, 'best' = the "
             "epoch the in-training metric selected on the test split (as the published code does). "
             "Bold: best of each column."]
    if table.dataset_format == "hico" and protocols:
        notes.append(f"Default setting from the {' and '.join(sorted(protocols))} protocol; Known-Object "
                     "from the official protocol.")
    if table.synthetic:
        notes.append(f"Synthetic data ({table.dataset}): no comparison with the published numbers applies "
                     f"(those are {DATASET_TITLES[table.dataset_format]} results); no published rows or "
                     "differences are shown.")
        return notes
    cited = {}
    for row in table.rows():
        if row.kind == "published":
            pub = find_published(row.method, table.dataset_format, row.backbone)
            cited.setdefault(row.cite, pub.source)
    notes += [f"[{key}]: published numbers from the {source}." for key, source in cited.items()]
    if any(row.kind == "delta" for row in table.rows()):
        notes.append("Δ: ours minus the published row of the same method and backbone.")
    if not any(pub.backbone == backbone for pub in published_rows(table.dataset_format)):
        notes.append(f"Nothing was published for {backbone_label(backbone)}: no differences are computed.")
    for row in table.rows():
        by_flag: dict[str, list[str]] = {}
        for metric, flag in row.flags.items():
            by_flag.setdefault(flag, []).append(metric_title(table.dataset_format, metric))
        notes += [f"† [{row.cite}] {', '.join(titles)}: {flag}." for flag, titles in by_flag.items()]
    if table.dataset_format == "vcoco":
        notes.append(VCOCO_DETR_NOTE)
    return notes


def metric_title(fmt: str, metric: str) -> str:
    """``Known Object Rare`` / ``Role AP S1`` / ``Agent AP``."""
    for group, metrics, titles in COLUMN_GROUPS[fmt]:
        if metric in metrics:
            return f"{group} {titles[metrics.index(metric)]}".strip()
    raise KeyError(metric)
