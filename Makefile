# Two commands for a fresh machine: `make demo` (set up, then run the whole job on a synthetic world)
# and `make test` (set up, then run the test suite). Both install from this repo's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= data/demo
DEMO_HOUSEHOLDS ?= 20000
DEMO_MONTHS ?= 36
DEMO_AS_OF ?= 2025-12-01
export DOUDI_DATA_DIR ?= $(CURDIR)/data
# The synthetic extract carries made-up resident ID numbers; ingest replaces them by keyed pseudonyms.
# This key is for the demo only: a bureau sets its own secret DOUDI_ID_HMAC_KEY.
export DOUDI_ID_HMAC_KEY ?= demo-only-key-for-synthetic-data
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
	$(BIN)/doudi generate --households $(DEMO_HOUSEHOLDS) --months $(DEMO_MONTHS) --seed 7 --out $(DEMO_DIR)/extract
	$(BIN)/doudi validate $(DEMO_DIR)/extract
	$(BIN)/doudi ingest $(DEMO_DIR)/extract --out $(DEMO_DIR)/world
	$(BIN)/doudi train $(DEMO_DIR)/world --report-json $(DEMO_DIR)/report.json
	$(BIN)/doudi score $(DEMO_DIR)/world --as-of $(DEMO_AS_OF) --top-per-township 20 --out $(DEMO_DIR)/alerts.parquet
	@echo "Alerts: $(DEMO_DIR)/alerts.parquet. Model comparison: $(DEMO_DIR)/report.json."
	@echo "Next: $(BIN)/doudi users add NAME --role worker --region CODE, then $(BIN)/doudi serve"

test: $(STAMP)
	$(BIN)/ruff check --no-cache doudi features models serving monitoring tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check --no-cache doudi features models serving monitoring tests bench

bench: $(STAMP)
	for b in bench/bench_generate.py bench/bench_features.py bench/bench_train.py bench/bench_serving.py; do \
		$(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) data .pytest_cache
