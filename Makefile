# Two entry points for a fresh machine: `make run` (the app) and `make test` (everything CI checks).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Empty: the address in .streamlit/config.toml (127.0.0.1). HOST=0.0.0.0 exposes the app.
HOST ?=

.PHONY: run test lint unit e2e bench audit fake-server sqlite-schema clean

$(BIN)/.runtime-installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.dev-installed: $(BIN)/.runtime-installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.runtime-installed
	$(BIN)/streamlit run serve.py --server.port $(PORT) $(if $(HOST),--server.address $(HOST))

lint: $(BIN)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy playground ui pages app.py serve.py
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q --durations=25

# Known vulnerabilities in the pinned requirements and everything they pull in (see
# docs/security.md). Not part of `make test`: it needs PyPI's JSON API, which CI may not
# reach. --strict fails when a package could not be checked, so "clean" means checked.
audit: $(BIN)/.dev-installed
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

bench: $(BIN)/.dev-installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# After adding a migration or changing the rollups' upserts: the schema a new SQLite history is
# created with (store/fresh.py) and the rollups' per-connection statements (store/rollups.py).
sqlite-schema:
	$(BIN)/python -c "from playground.store.db import write_sqlite_snapshot; write_sqlite_snapshot()"

fake-server: $(BIN)/.dev-installed
	$(BIN)/python -m tests.fake_elumenta --port 8765

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts
