"""Render a :class:`~hqm.reporting.tables.Table` as Markdown, a complete LaTeX ``table`` and CSV.

The three carry the same rows, values and notes. The LaTeX needs ``booktabs`` only, is pure ASCII
and cites the published rows with ``\\cite{key}`` (keys of ``references.bib``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tabulate import tabulate

from hqm.io import atomic_write
from hqm.reporting.paper import backbone_label, method_label
from hqm.reporting.tables import (
    COLUMN_GROUPS,
    DATASET_TITLES,
    Table,
    TableRow,
    build_table,
    load_runs,
)

DASH = "–"  # nothing published / not available
TABLE_FORMATS = ("md", "tex", "csv")


def _value(row: TableRow, metric: str, pm: str) -> str | None:
    if metric not in row.values:
        return None
    mean, std = row.values[metric]
    if row.kind == "delta":
        return f"{mean:+.2f}"
    return f"{mean:.2f}" + ("" if std is None else f" {pm} {std:.2f}")


def _label(row: TableRow, cite: str) -> str:
    """Method column: ``QPIC + HQM`` + citation (published), ``(ours)``, or the Δ line."""
    if row.kind == "published":
        return f"{method_label(row.method)} {cite.format(key=row.cite)}"
    if row.kind == "delta":
        return "Δ to " + cite.format(key=row.cite)
    return f"{method_label(row.method, row.variant)} (ours)"


def checkpoint_text(row: TableRow) -> str:
    """``last (ep. 80)`` / ``best (ep. 37–52)``: the checkpoint and the epochs of its files."""
    if not row.checkpoint:
        return DASH
    if not row.epochs:
        return row.checkpoint
    lo, hi = row.epochs[0], row.epochs[-1]
    return f"{row.checkpoint} (ep. {lo})" if lo == hi else f"{row.checkpoint} (ep. {lo}–{hi})"


def _meta(row: TableRow) -> list[str]:
    """Backbone, checkpoint and n columns."""
    if row.kind == "published":
        return [backbone_label(row.backbone), DASH, DASH]
    return [backbone_label(row.backbone), checkpoint_text(row), str(len(row.seeds))]


def column_titles(table: Table) -> list[str]:
    return [f"{group} {title}".strip() for group, _, titles in COLUMN_GROUPS[table.dataset_format] for title in titles]


def caption(table: Table) -> str:
    title = DATASET_TITLES[table.dataset_format]
    what = f"synthetic data in the {title} layout ({table.dataset})" if table.synthetic else f"{title} ({table.dataset})"
    unit = "mAP" if table.dataset_format == "hico" else "AP"
    return f"Results on {what}, {unit} in percent."


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def render_markdown(table: Table) -> str:
    headers = ["Method", "Backbone", "Checkpoint", "n", *column_titles(table)]
    body = []
    for row in table.rows():
        cells = []
        for metric in table.metrics:
            text = _value(row, metric, "±")
            text = DASH if text is None else text + ("†" if metric in row.flags else "")
            cells.append(f"**{text}**" if metric in row.bold else text)
        body.append([_label(row, "[{key}]"), *_meta(row), *cells])
    text = f"### {caption(table)}\n\n" + tabulate(body, headers, tablefmt="github", disable_numparse=True)
    return text + "\n\n" + "\n".join(f"* {note}" for note in table.notes) + "\n"


# ---------------------------------------------------------------------------------------------
# LaTeX
# ---------------------------------------------------------------------------------------------

_TEX_TEXT = (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
             ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}"))  # fmt: skip
_TEX_SYMBOLS = (("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("†", r"$^\dagger$"), ("–", "--"), ("−", "-"),
                ("’", "'"), ("×", r"$\times$"))  # fmt: skip


def tex_escape(text: str) -> str:
    """Plain text -> LaTeX text (special characters escaped, the few symbols used here as macros)."""
    if "\\" in text:
        text = text.replace("\\", "\0")
    for char, repl in _TEX_TEXT[1:]:
        text = text.replace(char, repl)
    text = text.replace("\0", _TEX_TEXT[0][1])
    for char, repl in _TEX_SYMBOLS:
        text = text.replace(char, repl)
    return text.encode("ascii", "replace").decode("ascii")


def _tex_cells(table: Table, row: TableRow) -> list[str]:
    cells = []
    for metric in table.metrics:
        text = _value(row, metric, "\0")
        if text is None:
            cells.append("--")
            continue
        if "\0" in text:  # the std below the mean in a smaller font: the table fits a text column
            mean, std = text.split(" \0 ")
            text = rf"\shortstack{{{mean}\\{{\tiny$\pm${std}}}}}"
        text += r"$^\dagger$" if metric in row.flags else ""
        cells.append(rf"\textbf{{{text}}}" if metric in row.bold else text)
    return cells


def _tex_label(row: TableRow) -> str:
    if row.kind == "published":
        return tex_escape(method_label(row.method)) + rf"~\cite{{{row.cite}}}"
    if row.kind == "delta":
        return rf"\quad $\Delta$ to \cite{{{row.cite}}}"
    return tex_escape(f"{method_label(row.method, row.variant)} (ours)")


def _tex_header(table: Table) -> list[str]:
    first, rules, second = ["", "", "", ""], [], ["Method", "Backbone", "Ckpt.", "$n$"]
    col = 5
    for group, metrics, titles in COLUMN_GROUPS[table.dataset_format]:
        first.append(rf"\multicolumn{{{len(metrics)}}}{{c}}{{{group}}}")
        rules.append(rf"\cmidrule(lr){{{col}-{col + len(metrics) - 1}}}")
        second += [title or "mean" for title in titles]
        col += len(metrics)
    return [" & ".join(first) + r" \\", "".join(rules), " & ".join(second) + r" \\"]


def render_latex(table: Table) -> str:
    """A complete ``table`` float: booktabs rules, grouped headers, caption, label, notes."""
    lines = [
        r"% requires \usepackage{booktabs}; \cite keys are in references.bib",
        r"\begin{table}[t]",
        r"\centering",
        r"\scriptsize",
        r"\setlength{\tabcolsep}{2.5pt}",
        rf"\caption{{{tex_escape(caption(table))}}}",
        rf"\label{{tab:{table.dataset}}}",
        r"\begin{tabular}{llcr" + "c" * len(table.metrics) + "}",
        r"\toprule",
        *_tex_header(table),
        r"\midrule",
    ]
    for index, (_, rows) in enumerate(table.blocks):
        if index:
            lines.append(r"\midrule")
        for row in rows:
            meta = [tex_escape(cell) for cell in _meta(row)]
            if "(" in meta[1]:  # "last (ep. 3)": the epochs below, in a smaller font
                name, epochs = meta[1].rstrip(")").split(" (", 1)
                meta[1] = rf"\shortstack{{{name}\\{{\tiny {epochs}}}}}"
            lines.append(" & ".join([_tex_label(row), *meta, *_tex_cells(table, row)]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        notes = " ".join(tex_escape(note) for note in table.notes)
        lines += [r"\par\smallskip", rf"\parbox{{\linewidth}}{{\scriptsize {notes}}}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def render_csv(table: Table) -> str:
    """One line per table row, numbers unformatted (empty where absent); notes as ``note`` rows."""
    header = ["row", "method", "label", "variant", "backbone", "checkpoint", "n", "seeds", "epochs", "cite"]
    for metric in table.metrics:
        header += [metric, f"{metric}_std"]
    header.append("bold")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows():
        out = [row.kind, row.method, method_label(row.method, row.variant), row.variant or "", row.backbone,
               row.checkpoint or "", len(row.seeds) if row.kind != "published" else "",
               " ".join(map(str, row.seeds)), " ".join(map(str, row.epochs)), row.cite or ""]
        for metric in table.metrics:
            mean, std = row.values.get(metric, (None, None))
            out += ["" if v is None else f"{v:.6g}" for v in (mean, std)]
        out.append(" ".join(m for m in table.metrics if m in row.bold))
        writer.writerow(out)
    for note in table.notes:
        writer.writerow(["note", "", note] + [""] * (len(header) - 3))
    return buf.getvalue()


RENDERERS = {"md": render_markdown, "tex": render_latex, "csv": render_csv}


def write_tables(
    metrics_paths: list,
    out_dir: str | Path,
    dataset: str,
    backbone: str = "resnet50",
    variant_order: list[str] | None = None,
    synthetic: bool = False,
    hico_protocol: str = "official",
) -> list[Path]:
    """``<out_dir>/<dataset>.{md,tex,csv}`` from the metrics files of one dataset."""
    table = build_table(load_runs(metrics_paths), dataset, backbone, variant_order, synthetic, hico_protocol)
    written = []
    for ext, render in RENDERERS.items():
        path = Path(out_dir) / f"{dataset}.{ext}"
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write(render(table))
        written.append(path)
    return written
