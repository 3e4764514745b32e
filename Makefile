# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint types unit test-embedded test-faults bench bench-expiry bench-inspector bench-beat bench-limits bench-metrics bench-logging bench-http bench-pages check-examples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/errands demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.installed-dev
	$(BIN)/mypy

check-examples: $(VENV)/.installed-dev
	$(BIN)/errands check examples src/errands/demo

# The whole suite: Redis-backed tests use 127.0.0.1:6379 when it answers, else an embedded Valkey.
test: lint types check-examples
	$(BIN)/python -m pytest -q

# The Redis-backed tests again, against the embedded Valkey whatever runs on 6379.
test-embedded: $(VENV)/.installed-dev
	ERRANDS_TEST_SERVER=embedded $(BIN)/python -m pytest -q -m redis

# The fault suite alone (part of `make test`): servers of its own, faults injected into them.
test-faults: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m faults

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run

# Redis memory over 5 minutes at full speed, every result kept 10 s: benchmarks/EXPIRY.md.
bench-expiry: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.expiry

# The inspector's reads (pages of dead jobs, a job, a queue) as the dead set grows to 100,000:
# benchmarks/INSPECTOR.md.
bench-inspector: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.inspector

# The scheduler at scale: 10,000 schedules, 1,000 due every second: benchmarks/BEAT.md.
bench-beat: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.beat

# The limiter's cost per job, its accuracy at 1,000/s, a backlog of 10,000: benchmarks/LIMITS.md.
bench-limits: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.limits

# Processing with and without the worker's --metrics-port, interleaved A/B rounds: benchmarks/METRICS.md.
bench-metrics: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.metrics

# What the per-job log line costs in processing: --log-jobs all / failures / none, interleaved
# rounds, stderr to a file (a few minutes): benchmarks/LOGGING.md.
bench-logging: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.logging

# Enqueue over HTTP: errands api against Flower's async-apply, wrk and an open-loop generator
# (about 2 minutes; needs wrk: apt-get install -y wrk): benchmarks/HTTP.md.
bench-http: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.http

# Every dashboard page and API read with 1,000,000 jobs ready and 100,000 dead: benchmarks/PAGES.md.
bench-pages: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.pages

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
