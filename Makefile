# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv if missing, install, run the embedded synthetic demo (CPU, no network)
#   make test   create .venv if missing, install, run lint + the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.hqm-installed

.PHONY: setup demo readme-table test lint clean-demo

# Byte-compiled once here, on every core (pip compiles one file at a time: ~65 s against ~39 s):
# where PYTHONDONTWRITEBYTECODE is set, a module without a .pyc is compiled again by every process
# (import torch 5.4 s instead of 2.6 s). Like pip, skip what this Python cannot compile (torch ships
# a Python-3.12-only test file).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" > /dev/null || true
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile profiles/local --cores all

# After `make demo`: the README's demo block from the demo's own tables and this machine.
readme-table: $(STAMP)
	$(BIN)/hqm readme-table --readme README.md --threads 1 \
		--tables results/tables/synthetic_hico.md results/tables/synthetic_vcoco.md

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

clean-demo:
	rm -rf data/synthetic_* runs/ results/tables results/plots results/gallery logs/ benchmarks/ .snakemake/
