# tradecore — the two commands that matter: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv dashboard chromium stack-up stack-down stack-status topics demo test unit lint compose-check clean

help:
	@echo "make demo          the whole loop on the local stack, then the API until Ctrl-C (ARGS=--once: exit)"
	@echo "make test          venv + stack + lint + the whole test suite against the real stack"
	@echo "make unit          the tests that need no stack (pytest -m 'not integration'), on both cores"
	@echo "make dashboard     the dashboard's front-end library (npm ci; run by make venv)"
	@echo "make stack-down    stop the local stack (data kept; 'tradecore stack down --purge' deletes it)"

# The venv is rebuilt whenever pyproject.toml changes (the stamp carries its hash). Bytecode is compiled at install:
# with PYTHONDONTWRITEBYTECODE set, every process (each `tradecore` a test starts) would otherwise recompile ccxt.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found — install Python 3.11 (or: make PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) dashboard

# The dashboard's one front-end dependency (lightweight-charts), pinned by package-lock.json, copied into the
# served directory; nothing else is built. Rebuilt when the lockfile changes.
DASHBOARD := api/dashboard
CHARTS    := $(DASHBOARD)/web/vendor/lightweight-charts.standalone.production.js
$(CHARTS): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found — install Node.js 20 (with npm) to build the dashboard"; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p $(@D) && cp $(DASHBOARD)/node_modules/lightweight-charts/dist/$(@F) $@

dashboard: $(CHARTS)

# The browser tests drive Debian's chromium (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

stack-up: venv
	$(BIN)/tradecore stack up

stack-down: venv
	$(BIN)/tradecore stack down

stack-status: venv
	$(BIN)/tradecore stack status

topics: stack-up
	$(BIN)/tradecore topics ensure

# The whole loop: API, processors, projector, recorded quotes, a scripted trader, a summary; ARGS=--once exits after it.
demo: topics dashboard
	$(BIN)/tradecore demo $(ARGS)

lint: venv
	$(BIN)/ruff format --check schemas commands domain streams projections api deploy tests bench
	$(BIN)/ruff check schemas commands domain streams projections api deploy tests bench
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases bench/*.py

compose-check:
	bash deploy/install-compose-plugin.sh
	POSTGRES_PASSWORD=compose-check TRADECORE_JWT_SECRET=compose-check GRAFANA_ADMIN_PASSWORD=compose-check \
		docker compose -f docker-compose.yml config -q

.PHONY: schemas-check
# Every current event schema must read every released version of it (offline; schemas/released/).
schemas-check: venv
	$(BIN)/python -m schemas.check

test: venv chromium stack-up lint compose-check schemas-check
	$(BIN)/pytest $(PYTEST_ARGS)

# No stack: tests/conftest.py fails any test that reaches Kafka, Postgres or the registry without the marker.
# The unit profile runs a fifth of each property test's examples (tests/conftest.py); `make test` runs them all.
# Bytecode is cached (__pycache__, git-ignored) even where PYTHONDONTWRITEBYTECODE is set: otherwise each worker, and
# each `tradecore` a test starts, compiles our sources and assertion-rewrites every test module again, every run.
unit: venv
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -m "not integration" -n 2 --hypothesis-profile=unit $(PYTEST_ARGS)

clean: stack-down
	rm -rf $(VENV)
