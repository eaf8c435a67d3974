# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test lint format bench install clean chromium wrk client-ops typescript

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ./clients/python
	touch $(STAMP)

install: $(STAMP)

# Server limits (docs/deployment.md): idle keep-alive connections close after 5 s; at most
# 1000 connections per worker (past it uvicorn answers 503); in-flight calls get 25 s at
# SIGTERM, then roll back; a request's line and headers at most 16 KiB, else 431 (httptools,
# through carpool's protocol class; h11 through its own flag). Request bodies:
# REQUEST_MAX_BYTES and REQUEST_READ_TIMEOUT_S (the app). Incomplete headers: the proxy's to
# time out. X-Forwarded-For / -Proto are believed only from FORWARDED_ALLOW_IPS (default:
# nobody; set it to your proxy's address).
FORWARDED_ALLOW_IPS ?=
UVICORN_LIMITS ?= --timeout-keep-alive 5 --limit-concurrency 1000 \
	--timeout-graceful-shutdown 25 --http carpool.web.http_limits:BoundedHttpToolsProtocol \
	--h11-max-incomplete-event-size 16384 \
	$(if $(FORWARDED_ALLOW_IPS),--forwarded-allow-ips '$(FORWARDED_ALLOW_IPS)',--no-proxy-headers)
# One directory for every worker's metrics, emptied at each start (prometheus-client).
METRICS_DIR ?= $(CURDIR)/.data/metrics

## Serve the app on $(HOST):$(PORT); with no DATABASE_URL, on an embedded PostgreSQL under .data/.
run: $(STAMP)
	@$(BIN)/carpool demo-token
	rm -rf "$(METRICS_DIR)" && mkdir -p "$(METRICS_DIR)"
	PROMETHEUS_MULTIPROC_DIR="$(METRICS_DIR)" $(BIN)/uvicorn asgi:app --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log \
		$(UVICORN_LIMITS)

## Lint, type-check and run the whole suite (TEST_DATABASE_URL, or a throwaway embedded PostgreSQL).
test: $(STAMP) lint chromium typescript
	$(BIN)/python -m pytest

## Debian's chromium, for the browser tests (CORS, WebSocket Origin, live answers); they
## skip, saying why, without it.
chromium:
	@command -v chromium >/dev/null 2>&1 || flock /tmp/apt.lock sh -c \
		'apt-get update -q && apt-get install -y -q chromium' >/dev/null 2>&1 || \
		echo "chromium could not be installed: the browser tests will be skipped"

## wrk, for the throughput benchmark (bench/throughput.py says how to install it without apt).
wrk:
	@command -v wrk >/dev/null 2>&1 || flock /tmp/apt.lock sh -c \
		'apt-get update -q && apt-get install -y -q wrk' >/dev/null 2>&1 || \
		echo "wrk could not be installed: bench/throughput.py will say how"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks (bench/*.py; throughput.py needs wrk: apt-get install -y wrk) with the bench extra.
## (bench/ab.py compares two revisions and takes one: run it by hand; bench/throughput.py runs
## bench/inprocess.py itself.)
bench: $(STAMP) wrk
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@for script in bench/*.py; do \
		case $$script in bench/_*|bench/peer.py|bench/ab.py|bench/inprocess.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache .hypothesis

## The platform's PostgreSQL (built with SSL), PgBouncer and nginx, for the topology tests
## (tests/topology: TLS, PgBouncer, two instances behind a proxy); they skip, saying why,
## without them.
TOPOLOGY_PACKAGES := postgresql pgbouncer nginx
.PHONY: topology-packages cluster
topology-packages:
	@{ ls /usr/lib/postgresql/*/bin/postgres && command -v pgbouncer && command -v nginx; } \
		>/dev/null 2>&1 || flock /tmp/apt.lock sh -c \
		'apt-get update -q && apt-get install -y -q $(TOPOLOGY_PACKAGES)' >/dev/null 2>&1 || \
		echo "$(TOPOLOGY_PACKAGES) could not be installed: the topology tests will be skipped"
test: topology-packages

## A local topology as several machines would run it (docs/deployment.md): nginx, two
## carpool instances, PgBouncer, a PostgreSQL primary and replica, Redis; Ctrl-C stops it.
cluster: $(STAMP) topology-packages
	$(BIN)/python -m cluster

## Regenerate the clients' typed operations (Python and browser) from the API description.
client-ops: $(STAMP)
	$(BIN)/python clients/generate.py

## TypeScript (npm, into .venv/node), for the test that type-checks the browser client's
## declarations; it skips, saying why, without it.
TSC := $(VENV)/node/node_modules/.bin/tsc
typescript: $(STAMP)
	@test -x $(TSC) || npm install --silent --prefix $(VENV)/node typescript@5.9.3 >/dev/null 2>&1 || \
		echo "typescript could not be installed: the declarations' type check will be skipped"
