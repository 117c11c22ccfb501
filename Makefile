# Two commands on a fresh machine:  `make run`  (main job)  and  `make test`  (the test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint typecheck lock servers bench clean

# requirements.lock pins every dependency (runtime + test + dask extras, Python 3.11): CI, the
# Docker image and `make test` install the same versions
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

## run: the default scenario (one simulated year, mock devices) -> runs/<id>/ with tables and PNGs
run: $(BIN)/.installed
	$(BIN)/lastwatt run --out runs --report

## servers: mosquitto, influxd and victoria-metrics from Debian's packages (for the tests)
servers:
	bash scripts/install-servers.sh

## test: lint, type check, then every test (integration tests start real servers on loopback ports)
test: $(BIN)/.installed servers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

## lock: re-pin requirements.lock after a dependency change in pyproject.toml (keeps the other
## pins); `make lock UPGRADE=--upgrade` moves every pin to the newest release
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra test --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
	  $(UPGRADE) -o requirements.lock

bench: $(BIN)/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
