# meterline: every target installs what it needs into .venv first (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
SOAK_STAMP := $(VENV)/.installed-soak

.PHONY: serve test lint typecheck pytest token bench bench-quick bench-spread bench-parse soak soak-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The bench extra (matplotlib, for the plot) is installed only by the bench targets, never by CI.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# The soak extra (schemathesis) is installed only by the soak targets.
$(SOAK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,soak]'
	touch $(SOAK_STAMP)

## Run the server on http://127.0.0.1:8080 with an embedded SQLite file (./meterline.db);
## `make serve PORT=8081 DB=sqlite:///other.db` (or DB=postgresql://...) elsewhere. Only values given
## on make's command line count (a PORT set in the environment for something else does not); the
## METERLINE_PORT and METERLINE_DATABASE_URL variables work too.
serve: $(STAMP)
	$(BIN)/meterline serve $(if $(filter command line,$(origin PORT)),--port $(PORT)) \
		$(if $(filter command line,$(origin DB)),--database-url '$(DB)')

## Create an API token (printed as the last line).
token: $(STAMP)
	$(BIN)/meterline tokens create $${NAME:-local}

## Lint, type-check and run the whole test suite, in parallel (pytest-xdist: TEST_WORKERS workers,
## more than the cores of a small machine on purpose: the tests wait on real servers much of the
## time, and more workers fill those waits). PostgreSQL variants run on METERLINE_TEST_POSTGRES_URL, else on a server
## answering on 127.0.0.1:5432 (METERLINE_TEST_POSTGRES_URL=off skips them).
TEST_WORKERS ?= 4
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (as in many containers): otherwise
# each worker compiles meterline and rewrites every test module's asserts while collecting, and each
# `meterline serve` a test starts compiles meterline again (its fork server too), hundreds of times
# a run. The files go to __pycache__ beside the sources, which git ignores.
pytest: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --durations=15

## The benchmark (workloads a-e at 1,000 and 1,000,000 customers, 3 runs, medians; PostgreSQL too
## when METERLINE_BENCH_POSTGRES_URL is set): rewrites the tables in BENCHMARKS.md.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

## A reduced benchmark in about a minute and a half; its last stdout line is a JSON summary.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --quick

## The evaluator's CPU per event on 50 customers, 1,000, and spread over a seeded deployment
## (100,000 customers unless SEEDED=path/to/seed.db), with and without headrooms, as ratios.
bench-spread: $(BENCH_STAMP)
	$(BIN)/python bench/spread.py $(if $(SEEDED),--seeded $(SEEDED))

## Measure the ingest parse paths (msgspec vs pydantic) on this machine.
bench-parse: $(STAMP)
	$(BIN)/python bench/parse_paths.py

## The crash and fault suite (not part of make test; about 10-15 minutes; root for the tmpfs
## disk faults): kill -9 under load, full disk, read-only database, 1,000 clients, slow clients,
## hostile webhook receivers, schemathesis. PostgreSQL too when METERLINE_SOAK_POSTGRES_URL is set.
## Prints a table of attacks, unexpected 5xx, events lost and duplicates; fails unless all are 0.
soak: $(SOAK_STAMP)
	$(BIN)/python -m bench.soak

## The same, each attack shortened (about 5 minutes).
soak-quick: $(SOAK_STAMP)
	$(BIN)/python -m bench.soak --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
