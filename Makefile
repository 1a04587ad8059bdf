# Developer entry points. `make demo` and `make test` are the two commands in
# README.md; .ci/run calls `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python 3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev demo test lint unit integration faults cluster integrations coverage matrix proto clean broker-up broker-down bench

# The main environment also carries the frameworks the integrations are
# tested against (the CPython matrix runs the core unit tests only).
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev,sklearn,spark,torch]" \
		"tensorflow-cpu>=2.12,<3" "lightning>=2,<3"
	touch $@

dev: $(BIN)/.installed

demo: dev broker-up
	$(BIN)/python examples/quickstart.py --bootstrap-servers 127.0.0.1:9092

lint: dev
	$(BIN)/black --check -q src tests examples bench
	$(BIN)/isort --check-only -q src tests examples bench
	$(BIN)/flake8 src tests examples bench
	$(BIN)/mypy

unit: dev
	$(BIN)/python -m pytest tests/unit -q --cov=vdt_ai --cov-branch --cov-report=

# Against the real broker (started if needed; `make broker-down` stops it).
integration: dev broker-up
	$(BIN)/python -m pytest tests/integration -q -m integration -p no:logging \
		--cov=vdt_ai --cov-branch --cov-append --cov-report=

# Fault injection: closed ports, the broker paused/killed, exit, signals,
# fork/spawn, damaged spool bytes, disk full (tests/faults). Counted by event id.
faults: dev broker-up
	$(BIN)/python -m pytest tests/faults -q -p no:logging \
		--cov=vdt_ai --cov-branch --cov-append --cov-report=

# A real 3-node cluster (scripts/kafka-dev cluster; RF 3, min.insync 2):
# rolling restart, leader crash, quorum loss, full outage. Stopped afterwards.
cluster: dev
	trap 'scripts/kafka-dev cluster down' EXIT; scripts/kafka-dev cluster up && \
		$(BIN)/python -m pytest tests/cluster -q -p no:logging \
			--cov=vdt_ai --cov-branch --cov-append --cov-report=

# Framework integrations against the real frameworks (and the broker). One
# process per framework: TensorFlow aborts when loaded after PyTorch.
integrations: dev broker-up
	set -e; for suite in tests/integrations/test_*.py; do \
		$(BIN)/python -m pytest $$suite -q -p no:logging \
			--cov=vdt_ai --cov-branch --cov-append --cov-report=; \
	done

coverage: dev
	$(BIN)/python -m coverage report --fail-under=90

# Benchmarks print figures and ratios (not run by CI; see README "Performance").
bench: dev broker-up
	$(BIN)/pip install -q --disable-pip-version-check -e ".[bench]"
	cd bench && ../$(BIN)/python table.py
	cd bench && ../$(BIN)/python caller_cost.py
	cd bench && ../$(BIN)/python throughput.py
	cd bench && ../$(BIN)/python outage_memory.py
	cd bench && ../$(BIN)/python outage_deadline.py
	trap 'scripts/kafka-dev cluster down' EXIT; scripts/kafka-dev cluster up && \
		cd bench && ../$(BIN)/python cluster.py

broker-up:
	scripts/kafka-dev up

broker-down:
	scripts/kafka-dev down

# Unit tests on the lowest CPython with the lowest allowed dependencies, and
# on the highest CPython with the newest.
matrix:
	scripts/test-matrix

test: lint unit integration faults cluster integrations coverage matrix

proto:
	scripts/gen-proto

clean:
	rm -rf $(VENV) .venv-py* .cache build dist .coverage .pytest_cache .mypy_cache
