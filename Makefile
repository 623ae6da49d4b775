# tradecore — the two commands that matter: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
NATIVE := schemas/batch/native
NATIVE_SOURCES := $(NATIVE)/Cargo.toml $(NATIVE)/Cargo.lock $(NATIVE)/pyproject.toml $(NATIVE)/tradecore_avro.pyi \
	$(wildcard $(NATIVE)/src/*.rs)
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock $(NATIVE_SOURCES) | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv lock dashboard chromium stack-up stack-down stack-status topics demo test unit lint compose-check clean

help:
	@echo "make demo          the whole loop on the local stack, then the API until Ctrl-C (ARGS=--once: exit)"
	@echo "make test          venv + stack + lint + the whole test suite against the real stack"
	@echo "make unit          the tests that need no stack (pytest -m 'not integration'), on both cores"
	@echo "make dashboard     the dashboard's front-end library (npm ci; run by make venv)"
	@echo "make lock          re-pin every dependency (requirements.lock) after changing pyproject.toml"
	@echo "make stack-down    stop the local stack (data kept; 'tradecore stack down --purge' deletes it)"

# The venv is rebuilt whenever pyproject.toml or requirements.lock changes (the stamp carries their hash), with every
# dependency at the version the lock names: a fresh clone installs what CI last passed with, not whatever was released
# since (a new hypothesis once turned CI's mypy red with no change of ours). `make lock` re-resolves after a change
# to pyproject.toml's dependencies. Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set, every process
# (each `tradecore` a test starts) would otherwise recompile ccxt.
# The batch codec's Rust reader and writer (schemas/batch/native) are built here too, by cargo through maturin (pyo3 from
# crates.io, pinned by its Cargo.lock): rebuilt when its sources change (the stamp carries their hash too).
$(STAMP): pyproject.toml requirements.lock $(NATIVE_SOURCES)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found — install Python 3.11 (or: make PYTHON=/path/to/python3.11)"; exit 1; }
	@command -v cargo >/dev/null || { echo "error: cargo not found — install Rust (https://rustup.rs) to build the Avro codec"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c requirements.lock -e '.[dev,bench]'
	$(BIN)/uv pip install -q --python $(BIN)/python --reinstall-package tradecore-avro ./$(NATIVE)
	@rm -f $(VENV)/.installed-* && touch $@

# setuptools is left to the venv (ccxt asks for any recent one; the venv's own is kept, as without a lock).
lock:
	@test -x $(BIN)/uv || { echo "error: no $(BIN)/uv — run make venv first"; exit 1; }
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --extra bench pyproject.toml -o requirements.lock \
		--custom-compile-command "make lock" --no-emit-package setuptools

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
	cd $(NATIVE) && cargo fmt --check && cargo clippy --quiet --release -- -D warnings

compose-check:
	bash deploy/install-compose-plugin.sh
	POSTGRES_PASSWORD=compose-check TRADECORE_JWT_SECRET=compose-check GRAFANA_ADMIN_PASSWORD=compose-check \
		docker compose -f docker-compose.yml config -q

.PHONY: schemas-check
# Every current event schema must read every released version of it (offline; schemas/released/).
schemas-check: venv
	$(BIN)/python -m schemas.check

# The unit tests first, on both cores as in `make unit` but with every property test's full count of examples; then
# the integration tests, one at a time (they start workers, APIs and brokers of their own and kill them on a clock).
test: venv chromium stack-up lint compose-check schemas-check
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -m "not integration" -n 2 --dist loadgroup $(PYTEST_ARGS)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

# No stack: tests/conftest.py fails any test that reaches Kafka, Postgres or the registry without the marker.
# The unit profile runs a fifth of each property test's examples, and of the rows of the whole-file replays
# (tests/conftest.py, tests/support/properties.py); `make test` runs them all.
# Bytecode is cached (__pycache__, git-ignored) even where PYTHONDONTWRITEBYTECODE is set: otherwise each worker, and
# each `tradecore` a test starts, compiles our sources and assertion-rewrites every test module again, every run.
# --dist loadgroup: a module marked xdist_group (the whole market feeds, the risk tests' generated day) runs on one
# worker, which builds its costly data once instead of each worker building it.
unit: venv
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -m "not integration" -n 2 --dist loadgroup --hypothesis-profile=unit $(PYTEST_ARGS)

clean: stack-down
	rm -rf $(VENV)
