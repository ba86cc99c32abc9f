"""Training curves (losses and mAP per epoch) from the runs' ``log.jsonl`` files, as PNG and CSV.

A log line is one JSON object per epoch with an ``epoch`` key; every other numeric entry (nested
dicts flattened with ``/``) is a series. Loss series are the keys containing ``loss``; accuracy
series the keys containing ``mAP`` or ``role_ap``. The CSV (long format) feeds ``dvc plots``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from hqm.errors import HqmError
from hqm.io import atomic_write


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
    """Epoch records of a ``log.jsonl`` (flattened, numeric entries only), in epoch order."""
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


def series_kind(key: str) -> str | None:
    """'loss', 'accuracy' or None (not plotted)."""
    if key == "epoch":
        return None
    if "loss" in key:
        return "loss"
    if "mAP" in key or "role_ap" in key:
        return "accuracy"
    return None


def curves_csv(logs: dict[str, list[dict[str, float]]]) -> str:
    """Long format ``run,epoch,series,value`` of every plotted series."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "epoch", "series", "value"])
    for run, records in logs.items():
        for record in records:
            for key, value in sorted(record.items()):
                if series_kind(key):
                    writer.writerow([run, int(record["epoch"]), key, f"{value:.6g}"])
    return buf.getvalue()


# The headline metric of each dataset format, in order of preference; the CSV keeps every series.
HEADLINE_ACCURACY = (
    "test/qpic/default/mAP",
    "test/official/default/mAP",
    "test/official/role_ap_s1_24",
    "test/vcoco/official/role_ap_s1_24",
)


def headline_accuracy_keys(records: list[dict[str, float]]) -> list[str]:
    """The one accuracy series a curve shows: the first headline key present, else all of them."""
    present = {k for r in records for k in r if series_kind(k) == "accuracy"}
    for key in HEADLINE_ACCURACY:
        if key in present:
            return [key]
    return sorted(present)


def plot_curves(logs: dict[str, list[dict[str, float]]], title: str, path: str | Path) -> None:
    """Two panels: the total training loss (``loss`` or ``train_loss``) and the headline mAP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for run, records in logs.items():
        epochs = [r["epoch"] for r in records]
        total = next((k for k in ("train_loss", "loss", "train/loss") if any(k in r for r in records)), None)
        if total is None:  # no total: the first loss series
            total = next((k for r in records for k in sorted(r) if series_kind(k) == "loss"), None)
        if total is not None:
            pts = [(e, r[total]) for e, r in zip(epochs, records) if total in r]
            ax_loss.plot(*zip(*pts), marker=".", label=run)
        acc_keys = headline_accuracy_keys(records)
        for key in acc_keys:
            pts = [(e, r[key]) for e, r in zip(epochs, records) if key in r]
            label = run if len(acc_keys) == 1 else f"{run}: {key}"
            ax_acc.plot(*zip(*pts), marker="o", label=label)
            if len(acc_keys) == 1:
                ax_acc.set_ylabel(key.removeprefix("test/"))
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
    ax_acc.set(title="test accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def write_plots(log_paths: dict[str, str | Path], out_png: str | Path, out_csv: str | Path, title: str) -> None:
    """Curves of the runs ``{label: log.jsonl}`` into one PNG and one CSV."""
    logs = {label: read_log(path) for label, path in log_paths.items()}
    plot_curves(logs, title, out_png)
    with atomic_write(out_csv, "w", encoding="utf-8") as handle:
        handle.write(curves_csv(logs))
