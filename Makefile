# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test lint format bench install clean browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the app on $(HOST):$(PORT); with no DATABASE_URL, on an embedded PostgreSQL under .data/.
run: $(STAMP)
	@$(BIN)/carpool demo-token
	$(BIN)/uvicorn asgi:app --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

## Lint, type-check and run the whole suite (TEST_DATABASE_URL, or a throwaway embedded PostgreSQL).
test: $(STAMP) lint browser
	$(BIN)/python -m pytest

## Debian's chromium for the real-browser tests (CORS, WebSocket Origin); they skip without it.
browser:
	@command -v chromium >/dev/null 2>&1 || flock /tmp/apt.lock sh -c \
		'apt-get update -qq && apt-get install -y -qq chromium' >/dev/null 2>&1 || \
		echo "chromium could not be installed: the browser tests will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis
