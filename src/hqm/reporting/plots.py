"""Training curves of one dataset: loss and mAP (percent) per epoch, one line per variant.

Inputs are the runs' ``log.jsonl`` (one JSON object per epoch) or their wide ``curves.csv``
(``epoch,lr,loss,loss_<component>...,map``; map in percent, empty where not evaluated), both
turned into the same per-epoch rows by :func:`read_run_curves`. Seeds of a variant are averaged
per epoch (band = sample std). Outputs: ``NAME_curves.png`` (200 dpi), ``NAME_curves.pdf`` and the
wide ``NAME_curves.csv`` (``epoch, <variant>_loss_mean, <variant>_loss_std, <variant>_map_mean,
<variant>_map_std, <variant>_n``), which DVC can plot with ``x: epoch``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import csv
import io
import json
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402

from hqm.errors import HqmError
from hqm.io import atomic_write

DPI = 200
CURVE_SERIES = ("loss", "map")
# Headline accuracy of a log line, in order of preference: (flattened key, factor to percent).
HEADLINE_ACCURACY = (
    ("map", 1.0),
    ("test/official/default/mAP", 100.0),
    ("test/qpic/default/mAP", 100.0),
    ("test/official/role_ap_s1_24", 1.0),
    ("test/vcoco/official/role_ap_s1_24", 1.0),
    ("test/hico/official/default/mAP", 100.0),
    ("test/hico/qpic/default/mAP", 100.0),
)


def _flatten(obj: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def read_log(path: str | Path) -> list[dict[str, float]]:
    """Epoch records of a ``log.jsonl`` (flattened with ``/``, numeric entries only), in epoch order."""
    path = Path(path)
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HqmError(f"{path}: line {number}: malformed JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or "epoch" not in obj:
            raise HqmError(f"{path}: line {number}: expected an object with an 'epoch' key")
        records.append(_flatten(obj))
    return sorted(records, key=lambda r: r["epoch"])


def curve_row(record: dict[str, float]) -> dict[str, float]:
    """One log record -> the wide curve row ``epoch, lr, loss, loss_<component>..., map`` (map in %).

    ``loss`` is the total training loss (``train_loss``), components the other ``train_loss_*``
    terms; ``map`` the headline test metric (HICO-DET Default mAP, V-COCO role AP S1), absent
    when the epoch was not evaluated. This is the layout of ``RUN/curves.csv``.
    """
    row: dict[str, float] = {"epoch": record["epoch"]}
    if "lr" in record:
        row["lr"] = record["lr"]
    for key, value in record.items():
        name = key.removeprefix("train_")
        if "/" in name or "loss" not in name:
            continue
        # train_loss_obj_ce -> loss_obj_ce, train_gbs_loss_obj_ce -> loss_gbs_obj_ce
        row["loss" if name == "loss" else "loss_" + name.replace("loss_", "", 1)] = value
    for key, factor in HEADLINE_ACCURACY:
        if key in record:
            row["map"] = record[key] * factor
            break
    return row


def read_curves_csv(path: str | Path) -> list[dict[str, float]]:
    """A wide ``curves.csv`` -> rows of floats (empty cells dropped), in epoch order."""
    path = Path(path)
    if not path.is_file():
        raise HqmError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "epoch" not in reader.fieldnames:
            raise HqmError(f"{path}: no 'epoch' column")
        for number, raw in enumerate(reader, start=2):
            row = {}
            for key, text in raw.items():
                if key is None or text in (None, ""):
                    continue
                try:
                    value = float(text)
                except ValueError:
                    raise HqmError(f"{path}: line {number}: {key}: {text!r} is not a number") from None
                if math.isfinite(value):
                    row[key] = value
            if "epoch" not in row:
                raise HqmError(f"{path}: line {number}: empty epoch")
            rows.append(row)
    return sorted(rows, key=lambda r: r["epoch"])


def read_run_curves(path: str | Path) -> list[dict[str, float]]:
    """Curve rows of one run from its ``log.jsonl`` or ``curves.csv`` (chosen by the suffix)."""
    if Path(path).suffix == ".csv":
        return read_curves_csv(path)
    return [curve_row(record) for record in read_log(path)]


def run_curves_csv(rows: list[dict[str, float]]) -> str:
    """``RUN/curves.csv`` text from curve rows: epoch, lr, loss, loss components (sorted), map."""
    keys = {k for row in rows for k in row}
    components = sorted(k for k in keys if k.startswith("loss_"))
    header = ["epoch"] + ["lr"] * ("lr" in keys) + ["loss"] + components + ["map"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if k not in row else (str(int(row[k])) if k == "epoch" else f"{row[k]:.6g}") for k in header])
    return buf.getvalue()


def variant_of(path: str | Path) -> str:
    """``runs/<dataset>/<variant>/seed<s>/log.jsonl`` -> ``<variant>``."""
    run_dir = Path(path).parent
    if not run_dir.name.startswith("seed") or not run_dir.parent.name:
        raise HqmError(f"{path}: expected runs/<dataset>/<variant>/seed<s>/{Path(path).name}")
    return run_dir.parent.name


def aggregate(runs: dict[str, list[list[dict[str, float]]]], series: str) -> dict[str, list[tuple[int, float, float, int]]]:
    """Per variant: (epoch, mean, sample std (0 for one seed), n) of ``series`` over its seeds."""
    out = {}
    for variant, seeds in runs.items():
        by_epoch: dict[int, list[float]] = {}
        for rows in seeds:
            for row in rows:
                if series in row:
                    by_epoch.setdefault(int(row["epoch"]), []).append(row[series])
        out[variant] = [
            (e, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
            for e, v in sorted(by_epoch.items())
        ]
    return out


def curves_table(runs: dict[str, list[list[dict[str, float]]]]) -> str:
    """The wide ``NAME_curves.csv``: one row per epoch, mean/std/n columns per variant and series."""
    stats = {s: aggregate(runs, s) for s in CURVE_SERIES}
    epochs = sorted({e for s in stats.values() for pts in s.values() for e, *_ in pts})
    header = ["epoch"] + [f"{v}_{s}_{k}" for v in runs for s in CURVE_SERIES for k in ("mean", "std", "n")]
    lookup = {(s, v, e): (m, sd, n) for s, per in stats.items() for v, pts in per.items() for e, m, sd, n in pts}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for epoch in epochs:
        line: list = [epoch]
        for variant in runs:
            for s in CURVE_SERIES:
                m, sd, n = lookup.get((s, variant, epoch), (None, None, None))
                line += ["", "", ""] if m is None else [f"{m:.6g}", f"{sd:.6g}", n]
        writer.writerow(line)
    return buf.getvalue()


def plot_curves(runs: dict[str, list[list[dict[str, float]]]], title: str, out_png: Path, out_pdf: Path) -> None:
    """Two panels (training loss, test mAP %), one line per variant, band = std over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, series, label in zip(axes, CURVE_SERIES, ("training loss", "test mAP (%)")):
        for variant, pts in aggregate(runs, series).items():
            if not pts:
                continue
            epochs, mean, std, _ = (list(x) for x in zip(*pts))
            (line,) = ax.plot(epochs, mean, marker="." if series == "loss" else "o", ms=3, label=variant)
            lo, hi = [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)]
            ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, out_png, out_pdf)
    plt.close(fig)


def save_figure(fig, out_png: str | Path, out_pdf: str | Path) -> None:
    """PNG at :data:`DPI` and PDF, each written atomically."""
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=DPI)


def load_runs_by_variant(paths: list, order: list[str] | None = None) -> dict[str, list[list[dict[str, float]]]]:
    """``{variant: [rows of each seed]}`` in ``order`` (then first seen)."""
    runs: dict[str, list[list[dict[str, float]]]] = {}
    for path in paths:
        runs.setdefault(variant_of(path), []).append(read_run_curves(path))
    ordered = [v for v in (order or []) if v in runs] + [v for v in runs if v not in (order or [])]
    return {v: runs[v] for v in ordered}


def write_curves(paths: list, out_dir: str | Path, dataset: str, order: list[str] | None = None) -> list[Path]:
    """``NAME_curves.{png,pdf,csv}`` from the runs' logs (or curves.csv)."""
    if not paths:
        raise HqmError(f"plots {dataset}: no run logs given")
    runs = load_runs_by_variant(paths, order)
    out = Path(out_dir)
    png, pdf, table = (out / f"{dataset}_curves.{ext}" for ext in ("png", "pdf", "csv"))
    plot_curves(runs, f"{dataset}: training curves (mean over seeds, band = std)", png, pdf)
    with atomic_write(table, "w", encoding="utf-8") as handle:
        handle.write(curves_table(runs))
    return [png, pdf, table]
