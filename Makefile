# Two commands on a fresh machine: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint clean chaos fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,demo,postgres,web]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mailflow demo

# The suite on every CPU (pytest-xdist); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The SIGKILL crash suite at length (CI runs 20 kills): CHAOS_KILLS and CHAOS_SEED choose the run.
CHAOS_KILLS ?= 200
CHAOS_SEED  ?= 11
chaos: $(STAMP)
	mkdir -p var
	MAILFLOW_CHAOS_KILLS=$(CHAOS_KILLS) MAILFLOW_CHAOS_SEED=$(CHAOS_SEED) MAILFLOW_CHAOS_REPORT=var/chaos-report.json \
		$(BIN)/pytest -q -s tests/chaos
	cat var/chaos-report.json

bench: $(STAMP)
	$(BIN)/python -m bench

# The parser fuzz suite's long run (CI runs 2,000; MAILFLOW_FUZZ_SEED=n for another seed).
fuzz: $(STAMP)
	MAILFLOW_FUZZ_COUNT=$${MAILFLOW_FUZZ_COUNT:-10000} $(BIN)/pytest -q -p no:cacheprovider tests/fuzz

lint: $(STAMP)
	$(BIN)/ruff check mailflow parsers tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
