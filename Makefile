# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := tests/npm/node_modules/.installed-stamp

.PHONY: run test lint bench bench-quick clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

$(NPM_STAMP): tests/npm/package.json tests/npm/package-lock.json
	cd tests/npm && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	$(BIN)/agenthub gateway

test: $(STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests || true
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/npm/node_modules .pytest_cache .mypy_cache .ruff_cache
