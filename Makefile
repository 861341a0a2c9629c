# Two commands for a fresh machine: `make demo` (set up, then run the whole job on a synthetic world)
# and `make test` (set up, then run the test suite). Both install from this repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= data/demo
DEMO_HOUSEHOLDS ?= 20000
DEMO_MONTHS ?= 36
export DOUDI_DATA_DIR ?= $(CURDIR)/data
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/doudi generate --households $(DEMO_HOUSEHOLDS) --months $(DEMO_MONTHS) --seed 7 --out $(DEMO_DIR)/world
	$(BIN)/doudi validate $(DEMO_DIR)/world
	$(BIN)/doudi labels $(DEMO_DIR)/world --as-of 2025-07-01 --out $(DEMO_DIR)/labels.parquet
	$(BIN)/doudi features $(DEMO_DIR)/world --as-of 2025-07-01 --out $(DEMO_DIR)/features.parquet

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check doudi features models serving monitoring tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) data .pytest_cache
