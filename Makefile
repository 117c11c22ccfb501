# Two commands on a fresh machine:  `make run`  (main job)  and  `make test`  (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint servers bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

## run: the default scenario (one simulated year, mock devices) -> runs/<id>/ with tables and PNGs
run: $(BIN)/.installed
	$(BIN)/lastwatt run --out runs --report

## servers: mosquitto, influxd and victoria-metrics from Debian's packages (for the tests)
servers:
	bash scripts/install-servers.sh

## test: lint, then every test (integration tests start real servers on loopback ports)
test: $(BIN)/.installed servers
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .

bench: $(BIN)/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
