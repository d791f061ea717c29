# Steward developer commands. Everything runs from the project venv (.venv).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install; reinstalls when pyproject.toml changes.
STAMP  := $(VENV)/.steward-installed

.PHONY: help .venv install up test fuzz lint typecheck fmt bench chaos chaos-long clean clean-data

help:
	@echo "make up       run the embedded stack (PostgreSQL, Temporal + UI, worker, API)"
	@echo "make test     lint, check the import layers, type-check and run the test suite"
	@echo "make fuzz     the long fuzzing profile: every API route and role, the domain parsers"
	@echo "make bench    run the benchmarks"
	@echo "make chaos    the short chaos runs (faults, then burst): real stack, seeded load and faults, invariants"
	@echo "make chaos-long  the long chaos run (>= 200 cases, kills, restarts; about 6 minutes)"
	@echo "make lint     ruff check"
	@echo "make fmt      ruff format + autofix"
	@echo "make clean    remove caches and build artefacts (keeps .venv and .steward data)"
	@echo "make clean-data  delete the embedded stack's data (.steward): all cases are lost"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

.venv: $(STAMP)

install: .venv

up: .venv
	$(BIN)/steward up

test: .venv
	$(BIN)/ruff check . && $(BIN)/lint-imports && $(BIN)/mypy && $(BIN)/pytest -q

# The property-based suites with many more (random) examples than `make test`
# runs (docs/testing.md#fuzzing).
fuzz: .venv
	FUZZ_PROFILE=long $(BIN)/pytest -q tests/unit/test_domain_properties.py tests/integration/test_api_fuzz.py

lint: .venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: .venv
	$(BIN)/mypy

fmt: .venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: .venv
	$(BIN)/python -m bench.run

# The seed of the chaos runs; the same seed plays the same load and faults (docs/chaos.md).
CHAOS_SEED ?= 1

chaos: .venv
	$(BIN)/python -m bench.chaos --profile faults --seed $(CHAOS_SEED)
	$(BIN)/python -m bench.chaos --profile burst --seed $(CHAOS_SEED)

chaos-long: .venv
	$(BIN)/python -m bench.chaos --profile long --seed $(CHAOS_SEED)

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

clean-data:
	rm -rf .steward
