"""Per-category AP of every variant against QPIC, rare vs non-rare (``NAME_categories.{png,pdf}``).

HICO-DET: the ``per_category`` rows of the metrics JSON (``hico.official.default``, else
``hico.qpic.default``: one row per evaluated HOI category with its ``split`` and ``ap``). V-COCO has
no rare split: the official per-role AP (``vcoco.official.role_ap_per_pair_s1``, 24 reported
action-roles) is drawn as one group. Seeds of a variant are averaged per category. Left panel:
mean AP per split and variant; then one scatter per variant, its AP against QPIC's per category.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import statistics
import sys
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402

from hqm.data.classes import VCOCO_EXCLUDED_FROM_REPORT
from hqm.errors import HqmError
from hqm.reporting.paper import method_label
from hqm.reporting.plots import save_figure
from hqm.reporting.tables import load_runs

SPLIT_COLOURS = {"rare": "tab:red", "non-rare": "tab:blue", "role": "tab:green"}


def hico_categories(metrics: dict, where: str) -> dict[str, tuple[str, float]] | None:
    """``{category key: (split, AP %)}`` of the rare / non-rare categories, or None without rows."""
    hico = metrics.get("hico") or {}
    for protocol in ("official", "qpic"):
        rows = ((hico.get(protocol) or {}).get("default") or {}).get("per_category")
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise HqmError(f"{where}: hico.{protocol}.default.per_category is not a list")
        out = {}
        for i, row in enumerate(rows):
            try:
                split, ap, key = row["split"], float(row["ap"]), "-".join(map(str, row["triplet"]))
            except (KeyError, TypeError, ValueError):
                raise HqmError(f"{where}: hico.{protocol}.default.per_category[{i}] needs triplet, split, ap") from None
            if split in ("rare", "non-rare"):
                out[key] = (split, 100.0 * ap)
        return out
    return None


def vcoco_categories(metrics: dict, where: str) -> dict[str, tuple[str, float]] | None:
    """``{action-role: ("role", AP %)}`` of the 24 reported action-roles (scenario 1), or None."""
    pairs = ((metrics.get("vcoco") or {}).get("official") or {}).get("role_ap_per_pair_s1")
    if pairs is None:
        return None
    if not isinstance(pairs, dict):
        raise HqmError(f"{where}: vcoco.official.role_ap_per_pair_s1 is not a mapping")
    excluded = "-".join(VCOCO_EXCLUDED_FROM_REPORT)
    return {name: ("role", 100.0 * float(ap)) for name, ap in pairs.items() if ap is not None and name != excluded}


def category_ap(paths: list) -> tuple[dict[str, dict[str, tuple[str, float]]], dict[str, str], str | None]:
    """Per variant ``{category: (split, mean AP % over seeds)}``, the variants' methods and the format.

    Uses the ``last`` checkpoint's files when both are given. Variants without per-category data
    are left out.
    """
    runs = load_runs(paths)
    if any(d.get("checkpoint", "last") == "last" for _, d in runs):
        runs = [(p, d) for p, d in runs if d.get("checkpoint", "last") == "last"]
    per_seed: dict[str, list[dict[str, tuple[str, float]]]] = {}
    methods: dict[str, str] = {}
    formats = {d["format"] for _, d in runs}
    if len(formats) > 1:
        raise HqmError(f"{runs[0][0]}: metrics of formats {sorted(formats)} in one figure")
    for path, data in runs:
        read = hico_categories if data["format"] == "hico" else vcoco_categories
        cats = read(data, path)
        methods[data["variant"]] = data["method"]
        if cats is not None:
            per_seed.setdefault(data["variant"], []).append(cats)
    out = {}
    for variant, seeds in per_seed.items():
        keys = sorted(set.intersection(*(set(s) for s in seeds)))
        out[variant] = {k: (seeds[0][k][0], statistics.fmean(s[k][1] for s in seeds)) for k in keys}
    return out, methods, formats.pop() if formats else None


def _baseline(methods: dict[str, str], available: dict) -> str | None:
    return next((v for v, m in methods.items() if m == "qpic" and v in available), None)


def plot_categories(cats: dict[str, dict[str, tuple[str, float]]], methods: dict[str, str], title: str,
                    out_png: Path, out_pdf: Path) -> None:
    """Bars of the mean AP per split and variant, then one scatter per variant against QPIC."""
    base = _baseline(methods, cats)
    others = [v for v in cats if v != base] if base else []
    fig, axes = plt.subplots(1, 1 + len(others), figsize=(4.2 * (1 + len(others)), 3.8), squeeze=False)
    ax = axes[0][0]
    splits = sorted({s for c in cats.values() for s, _ in c.values()}, key=list(SPLIT_COLOURS).index)
    width = 0.8 / max(len(splits), 1)
    for j, split in enumerate(splits):
        means = [statistics.fmean([ap for s, ap in cats[v].values() if s == split] or [0.0]) for v in cats]
        ax.bar([i + j * width for i in range(len(cats))], means, width, label=split, color=SPLIT_COLOURS[split])
    ax.set_xticks([i + width * (len(splits) - 1) / 2 for i in range(len(cats))],
                  [method_label(methods[v], v) for v in cats], rotation=20, fontsize=8)
    ax.set(ylabel="mean AP (%)", title="mean AP per split")
    if splits:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no per-category AP in the metrics files", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    for ax, variant in zip(axes[0][1:], others):
        _scatter(ax, cats[base], cats[variant], method_label(methods[base], base), method_label(methods[variant], variant))
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def _scatter(ax, base: dict[str, tuple[str, float]], other: dict[str, tuple[str, float]], xlabel: str,
             ylabel: str) -> None:
    shared = [k for k in base if k in other]
    for split, colour in SPLIT_COLOURS.items():
        keys = [k for k in shared if base[k][0] == split]
        if keys:
            gain = statistics.fmean(other[k][1] - base[k][1] for k in keys)
            ax.scatter([base[k][1] for k in keys], [other[k][1] for k in keys], s=10, color=colour,
                       label=f"{split} ({len(keys)}, mean Δ {gain:+.2f})")
    ax.plot([0, 100], [0, 100], color="grey", linewidth=0.8, linestyle="--")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel=f"{xlabel} AP (%)", ylabel=f"{ylabel} AP (%)",
           title=f"{ylabel} vs {xlabel}")
    ax.grid(alpha=0.3)
    if shared:
        ax.legend(fontsize=7, loc="upper left")


def write_category_figure(paths: list, out_dir: str | Path, dataset: str, order: list[str] | None = None) -> list[Path]:
    """``NAME_categories.{png,pdf}``; without per-category data the figure says so (and stderr)."""
    cats, methods, _ = category_ap(paths) if paths else ({}, {}, None)
    ordered = [v for v in (order or []) if v in cats] + [v for v in cats if v not in (order or [])]
    cats = {v: cats[v] for v in ordered}
    if not cats:
        print(f"hqm plots: warning: no per-category AP in the {len(paths)} metrics files of {dataset}",
              file=sys.stderr)
    out = Path(out_dir)
    png, pdf = out / f"{dataset}_categories.png", out / f"{dataset}_categories.pdf"
    plot_categories(cats, methods, f"{dataset}: per-category AP (mean over seeds)", png, pdf)
    return [png, pdf]
