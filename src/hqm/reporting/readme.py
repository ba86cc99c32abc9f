"""The README's demo section, regenerated from the demo's own outputs (``hqm readme-table``).

The block between ``<!-- demo-results:start -->`` and ``<!-- demo-results:end -->`` is replaced by
the machine the demo ran on and the Markdown tables ``hqm tables`` wrote, so the numbers a new
user reads are the numbers a ``make demo`` printed, not a hand-copied run.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from hqm.errors import HqmError
from hqm.io import atomic_write

START = "<!-- demo-results:start -->"
END = "<!-- demo-results:end -->"


def machine_line(torch_version: str, threads: int | None = None, cpu_capability: str | None = None) -> str:
    """One line naming what the numbers depend on: CPU model, cores, threads, torch and the vector
    kernels torch picked (``torch.backends.cpu.get_cpu_capability()``, e.g. AVX2 or AVX512): two
    CPUs with other kernels round differently from the first step on, and train at other speeds."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    thread_text = f", {threads} thread(s) per training" if threads else ""
    kernels = f" ({cpu_capability} kernels)" if cpu_capability else ""
    return f"{cpu}, {os.cpu_count()} cores{thread_text}, torch {torch_version}{kernels}, {platform.system()}"


def table_body(path: Path) -> str:
    """A table file of ``hqm tables`` without its first-level title (the README has its own)."""
    if not path.is_file():
        raise HqmError(f"{path}: not found; run `make demo` first")
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("# ")).strip()


def demo_block(tables: list[Path], machine: str) -> str:
    parts = [START, f"Measured on: {machine}.", ""]
    for path in tables:
        parts += [f"`{path.as_posix()}`:", "", table_body(path), ""]
    return "\n".join(parts + [END])


def update_readme(readme: str | os.PathLike, tables: list[Path], machine: str) -> None:
    """Replace the marked block of ``readme`` (atomically); the markers must be there once each."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise HqmError(f"{readme}: needs exactly one {START} ... {END} block")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    with atomic_write(readme, "w", encoding="utf-8") as handle:
        handle.write(head + demo_block(tables, machine) + tail)
