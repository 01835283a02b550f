# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck unit demo bench bench-quick bench-emulator screenshots clean package compat

# The venv is (re)built when missing or when the pinned set or the package metadata changed.
$(STAMP): pyproject.toml constraints.txt
	@bash scripts/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,sql]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest -q -x

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# Users' data (PostgreSQL and SQLite): ceiling vs naive job vs the operator, the mapper alone, latency
# and concurrency (ROWS=1000000 and REPEAT=3 by default). Figures in .bench/results.json.
# BASELINE=<another checkout> runs its package in turns with this one's, and prints both side by side.
ROWS ?= 1000000
REPEAT ?= 3
BASELINE ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py --rows $(ROWS) --repeat $(REPEAT) $(if $(BASELINE),--baseline $(BASELINE))

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench.py --quick --repeat 1

bench-emulator: $(STAMP)
	$(BIN)/python benchmarks/bench_emulator.py --events $(ROWS)

# README pictures (not part of `make test`): a real Airflow UI in headless Chromium -> docs/images/*.png.
# Installs Debian's chromium with apt-get when it is missing (as root).
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .airflow_home .demo .bench build *.egg-info

# CI's extra checks (.ci/run): the wheel users install, and the Airflow minors below the pinned one.
package: $(STAMP)
	bash scripts/check-package.sh

compat: $(STAMP)
	bash scripts/compat-matrix.sh
