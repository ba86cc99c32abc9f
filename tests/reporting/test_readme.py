"""The README's demo block is regenerated from the tables the demo wrote, and only that block."""

import os

import pytest

from hqm.errors import HqmError
from hqm.reporting.readme import END, START, machine_line, update_readme


def test_block_is_replaced_by_the_tables_and_the_machine(tmp_path):
    table = tmp_path / "synthetic_hico.md"
    table.write_text("# Synthetic HICO\n\n| method | Full |\n| --- | ---: |\n| QPIC (ours) | 41.0 |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold numbers\n{END}\noutro\n")
    update_readme(readme, [table], "Test CPU, 2 cores")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old numbers" not in text
    assert "Measured on: Test CPU, 2 cores." in text and "| QPIC (ours) | 41.0 |" in text
    assert "# Synthetic HICO" not in text  # the README has its own headings


def test_missing_markers_or_tables_are_one_line_errors(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no block\n")
    with pytest.raises(HqmError, match="README.md: needs exactly one"):
        update_readme(readme, [], "m")
    readme.write_text(f"{START}\n{END}\n")
    with pytest.raises(HqmError, match="nope.md: not found; run `make demo` first"):
        update_readme(readme, [tmp_path / "nope.md"], "m")
    assert readme.read_text() == f"{START}\n{END}\n"


def test_machine_line_names_cores_threads_torch_and_kernels():
    line = machine_line("2.14.1", threads=1, cpu_capability="AVX2")
    assert f"{os.cpu_count()} cores, 1 thread(s) per training, torch 2.14.1 (AVX2 kernels)" in line
    assert "kernels" not in machine_line("2.14.1")
