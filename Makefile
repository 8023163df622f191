# farebox: `make run` serves the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test lint install migration bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate the embedded SQLite database, load the bundled catalogs and the demo tenants, serve on :8000
## with the worker (renewals, trial ends, payment retries, e-mail and webhook delivery, billing) in the same process.
run: install
	$(BIN)/farebox migrate
	$(BIN)/farebox catalog load --bundled
	$(BIN)/farebox demo-data
	@echo "farebox on http://$${FAREBOX_HOST:-127.0.0.1}:$${FAREBOX_PORT:-8000}  (API docs: /docs, portal: /portal, metrics: /metrics)"
	@echo "the worker runs in the same process: renewals, trial ends, payment retries, e-mail and webhook delivery"
	@echo "a narrated walk-through of the three catalogs on a test clock: $(BIN)/farebox demo"
	$(BIN)/farebox serve

## ruff (pycodestyle, pyflakes, bugbear, import order; lines under 120) and mypy on src/farebox (pyproject.toml).
lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy

## Lint, then the whole suite; on PostgreSQL too when FAREBOX_TEST_POSTGRES is set.
test: lint
	@bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## A new migration from the tables in code: make migration m="add usage counters"
migration: install
	$(BIN)/python -c "from farebox.storage.engine import make_engine; from farebox.storage import migrate; e = make_engine('sqlite:///var/migration-base.db'); migrate.upgrade(e); migrate.revision(e, '$(m)')"
	rm -f var/migration-base.db*

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
