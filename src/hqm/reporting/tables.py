"""Result tables (Markdown, LaTeX booktabs, CSV) from metrics JSON files only.

One table per dataset, one row per variant: our mean ± std over seeds (with n), the published
number beside it and the difference. HICO-DET: Full / Rare / Non-rare mAP for the Default and
Known-Object settings; V-COCO: role AP for scenarios 1 and 2 (24 action-roles). Everything in percent.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from hqm.errors import HqmError
from hqm.io import atomic_write, read_json
from hqm.reporting.paper import HICO_METRICS, VCOCO_DETR_NOTE, VCOCO_METRICS, find_published

METRIC_LABELS = {
    "default_full": "Full (Default)",
    "default_rare": "Rare (Default)",
    "default_nonrare": "Non-rare (Default)",
    "ko_full": "Full (Known-Object)",
    "ko_rare": "Rare (Known-Object)",
    "ko_nonrare": "Non-rare (Known-Object)",
    "role_ap_s1": "Role AP S1",
    "role_ap_s2": "Role AP S2",
}
NOT_PUBLISHED = "not published"
MISSING = "missing"
TABLE_FORMATS = ("md", "tex", "csv")


@dataclass
class Row:
    """One variant: the per-seed values of every metric (percent) and the published reference."""

    variant: str
    method: str
    seeds: list[int]
    values: dict[str, list[float]]
    published: dict[str, float]
    flags: dict[str, str]

    def stats(self, metric: str) -> tuple[float | None, float | None, int]:
        """(mean, sample std or None for one seed, n) of ``metric``; mean is None with no value."""
        vals = self.values.get(metric, [])
        if not vals:
            return None, None, 0
        std = statistics.stdev(vals) if len(vals) > 1 else None
        return statistics.fmean(vals), std, len(vals)


@dataclass
class Table:
    dataset: str
    dataset_format: str  # "hico" | "vcoco"
    metrics: tuple[str, ...]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


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
    """V-COCO role AP (24 action-roles) in percent, as the official evaluation prints it."""
    official = (metrics.get("vcoco") or {}).get("official")
    if not isinstance(official, dict):
        raise HqmError(f"{where}: no 'vcoco.official' section")
    out = {}
    for name, key in (("role_ap_s1", "role_ap_s1_24"), ("role_ap_s2", "role_ap_s2_24")):
        if key in official:
            out[name] = _number(official[key], f"{where}: vcoco.official.{key}")
    return out


def load_runs(paths: list[str | Path]) -> list[tuple[str, dict]]:
    """Read metrics files; each must name its dataset, format, variant, method and seed."""
    runs = []
    for path in paths:
        data = read_json(path)
        for key in ("dataset", "format", "variant", "method", "seed"):
            if key not in data:
                raise HqmError(f"{path}: missing key '{key}'")
        if data["format"] not in ("hico", "vcoco"):
            raise HqmError(f"{path}: format: {data['format']!r} is not 'hico' or 'vcoco'")
        runs.append((str(path), data))
    return runs


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def build_tables(
    runs: list[tuple[str, dict]],
    backbone: str = "resnet50",
    variant_order: list[str] | None = None,
    hico_protocol: str = "official",
) -> list[Table]:
    """Group runs by dataset then variant (in ``variant_order``, else first seen) into tables.

    ``hico_protocol`` is the preferred protocol of the Default setting: ``official`` for HICO-DET,
    ``qpic`` for the synthetic data (the official protocol averages over all 600 HICO-DET
    categories, most of which the synthetic test set does not have).
    """
    by_dataset: dict[str, list[tuple[str, dict]]] = {}
    for path, data in runs:
        by_dataset.setdefault(data["dataset"], []).append((path, data))
    tables = []
    for dataset, items in by_dataset.items():
        formats = {d["format"] for _, d in items}
        if len(formats) != 1:
            raise HqmError(f"{items[0][0]}: dataset '{dataset}' has runs of formats {sorted(formats)}")
        fmt = formats.pop()
        table = Table(dataset, fmt, HICO_METRICS if fmt == "hico" else VCOCO_METRICS, [])
        protocols: set[str] = set()
        rows: dict[str, Row] = {}
        for path, data in items:
            if fmt == "hico":
                values, protocol = extract_hico(data, path, hico_protocol)
                protocols.add(protocol)
            else:
                values = extract_vcoco(data, path)
            row = rows.get(data["variant"])
            if row is None:
                pub = find_published(data["method"], fmt, backbone)
                row = rows[data["variant"]] = Row(
                    data["variant"], data["method"], [], {}, dict(pub.values) if pub else {},
                    dict(pub.flags) if pub else {},
                )
                if pub:
                    note = f"{data['variant']}: published {pub.model} ({pub.backbone}), {pub.source}."
                    table.notes.append(note)
            elif row.method != data["method"]:
                raise HqmError(f"{path}: variant '{data['variant']}' has method '{data['method']}', other seeds '{row.method}'")
            if data["seed"] in row.seeds:
                raise HqmError(f"{path}: seed {data['seed']} of '{data['variant']}' appears twice")
            row.seeds.append(data["seed"])
            for metric, value in values.items():
                row.values.setdefault(metric, []).append(value)
        order = list(variant_order or [])
        order += [v for v in rows if v not in order]
        table.rows = [rows[v] for v in order if v in rows]
        if fmt == "hico":
            table.notes.insert(0, f"Default setting from the {' and '.join(sorted(protocols))} protocol; "
                               "Known-Object from the official protocol (mean over all 600 HICO-DET categories).")
        table.notes.insert(0, "mAP in percent; ours = mean ± sample std over n seeds; Δ = ours − published.")
        for row in table.rows:
            by_flag: dict[str, list[str]] = {}
            for metric, flag in row.flags.items():
                by_flag.setdefault(flag, []).append(METRIC_LABELS[metric])
            for flag, labels in by_flag.items():
                table.notes.append(f"† {row.variant}, published {', '.join(labels)}: {flag}.")
        if fmt == "vcoco":
            table.notes.append(VCOCO_DETR_NOTE)
        tables.append(table)
    return tables


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _cells(row: Row, metric: str, pm: str, dagger: str) -> list[str]:
    mean, std, n = row.stats(metric)
    ours = MISSING if mean is None else f"{mean:.2f}" + ("" if std is None else f" {pm} {std:.2f}")
    pub = row.published.get(metric)
    paper = NOT_PUBLISHED if pub is None else f"{pub:.2f}" + (dagger if metric in row.flags else "")
    diff = "n/a" if pub is None or mean is None else f"{mean - pub:+.2f}"
    return [ours, paper, diff]


def render_markdown(table: Table) -> str:
    headers = ["Variant", "n"]
    for metric in table.metrics:
        label = METRIC_LABELS[metric]
        headers += [f"{label} ours", f"{label} paper", "Δ"]
    body = [
        [row.variant, str(len(row.seeds))] + sum((_cells(row, m, "±", "†") for m in table.metrics), [])
        for row in table.rows
    ]
    text = f"### {table.dataset}\n\n" + tabulate(body, headers, tablefmt="github", disable_numparse=True)
    return text + "\n\n" + "\n".join(f"* {note}" for note in table.notes) + "\n"


def _tex(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, repl)
    return text.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("†", r"$^\dagger$").replace("−", "-")


def render_latex(table: Table) -> str:
    lines = [
        r"% requires \usepackage{booktabs}",
        r"\begin{tabular}{l r " + " ".join(["r r r"] * len(table.metrics)) + "}",
        r"\toprule",
        " & & " + " & ".join(rf"\multicolumn{{3}}{{c}}{{{_tex(METRIC_LABELS[m])}}}" for m in table.metrics) + r" \\",
        " ".join(rf"\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(len(table.metrics))),
        "Variant & $n$ & " + " & ".join([r"ours & paper & $\Delta$"] * len(table.metrics)) + r" \\",
        r"\midrule",
    ]
    for row in table.rows:
        cells = sum((_cells(row, m, r"$\pm$", r"$^\dagger$") for m in table.metrics), [])
        lines.append(" & ".join([_tex(row.variant), str(len(row.seeds))] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {_tex(note)}" for note in table.notes]
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    """Numbers only (empty where absent), one row per variant."""
    header = ["dataset", "variant", "method", "n", "seeds"]
    for metric in table.metrics:
        header += [f"{metric}_mean", f"{metric}_std", f"{metric}_published", f"{metric}_diff"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        out = [table.dataset, row.variant, row.method, len(row.seeds), " ".join(map(str, row.seeds))]
        for metric in table.metrics:
            mean, std, _ = row.stats(metric)
            pub = row.published.get(metric)
            diff = None if mean is None or pub is None else mean - pub
            out += ["" if v is None else f"{v:.4f}" for v in (mean, std, pub, diff)]
        writer.writerow(out)
    return buf.getvalue()


RENDERERS = {"md": render_markdown, "tex": render_latex, "csv": render_csv}


def write_tables(
    metrics_paths: list[str | Path],
    out_dir: str | Path,
    backbone: str = "resnet50",
    variant_order: list[str] | None = None,
    hico_protocol: str = "official",
) -> list[Path]:
    """Render ``<out_dir>/<dataset>.{md,tex,csv}`` for every dataset in the metrics files."""
    written = []
    for table in build_tables(load_runs(metrics_paths), backbone, variant_order, hico_protocol):
        for ext, render in RENDERERS.items():
            path = Path(out_dir) / f"{table.dataset}.{ext}"
            with atomic_write(path, "w", encoding="utf-8") as handle:
                handle.write(render(table))
            written.append(path)
    return written
