# Developer entry points. `make demo` and `make test` are the two commands in
# README.md; .ci/run calls `make test` (and the checks beside it).
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python 3.11 || command -v python3)
PIP_FLAGS := -q --disable-pip-version-check
VENV := .venv
BIN := $(VENV)/bin
# Small environments for the targets that need no framework.
DEMO_BIN := .venv-demo/bin
DOCS_BIN := .venv-docs/bin

.PHONY: dev demo test lint unit integration faults cluster integrations coverage \
	matrix package docs docs-serve examples docs-examples kafka-dev-test proto clean \
	broker-up broker-down bench

# The main environment also carries the frameworks the integrations are
# tested against (several GB). Only the test targets below need it.
# scripts/venv-install installs with uv when it can (its cache makes a rebuild
# seconds instead of minutes), with pip otherwise.
$(BIN)/.installed: pyproject.toml
	scripts/venv-install $(VENV) $(PYTHON) -q -e ".[dev,release,sklearn,spark,torch,shap,otel]" \
		"tensorflow-cpu>=2.12,<3" "lightning>=2,<3"
	touch $@

dev: $(BIN)/.installed

# The quickstart needs the core package only: its own small virtualenv.
$(DEMO_BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-demo
	$(DEMO_BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

demo: $(DEMO_BIN)/.installed broker-up
	$(DEMO_BIN)/python examples/quickstart.py --bootstrap-servers 127.0.0.1:9092

# The documentation site (MkDocs, Material, mkdocstrings): core + docs extra.
# The configuration and CLI references are generated from the code at build
# time (docs/_hooks/reference.py).
$(DOCS_BIN)/.installed: pyproject.toml
	scripts/venv-install .venv-docs $(PYTHON) -q -e ".[docs]"
	touch $@

docs: $(DOCS_BIN)/.installed
	$(DOCS_BIN)/mkdocs build --strict --site-dir build/site

docs-serve: $(DOCS_BIN)/.installed
	$(DOCS_BIN)/mkdocs serve

lint: dev
	$(BIN)/black --check -q src tests examples bench docs/_hooks
	$(BIN)/isort --check-only -q src tests examples bench docs/_hooks
	$(BIN)/flake8 src tests examples bench docs/_hooks
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
	cd bench && ../$(BIN)/python table.py --chart ../docs/img/performance.png
	cd bench && ../$(BIN)/python offline_spool.py
	cd bench && ../$(BIN)/python caller_cost.py
	cd bench && ../$(BIN)/python typed_fields.py
	cd bench && ../$(BIN)/python throughput.py
	cd bench && ../$(BIN)/python outage_memory.py
	cd bench && ../$(BIN)/python outage_deadline.py
	trap 'scripts/kafka-dev cluster down' EXIT; scripts/kafka-dev cluster up && \
		cd bench && ../$(BIN)/python cluster.py

broker-up:
	scripts/kafka-dev up

broker-down:
	scripts/kafka-dev down

# Unit tests on every CPython 3.8-3.13 but the main one (3.8 with the lowest
# allowed dependencies, 3.13 with the newest), and the scikit-learn and PySpark
# integrations with their lowest allowed versions on 3.8 (scripts/test-matrix).
matrix:
	scripts/test-matrix all

# sdist and wheel built, `twine check --strict`, the wheel's contents, and the
# wheel installed into a clean virtualenv (tests/release/test_package.py); the
# generated reference pages of the docs site cover every setting and option.
package: dev
	$(BIN)/python -m pytest tests/release/test_package.py tests/release/test_docs.py \
		-q -p no:cacheprovider

# The examples that need only the core package, against the dev broker:
# the quickstart, then examples/consumer.py reading what it sent.
examples: dev broker-up
	$(BIN)/python -m pytest tests/release/test_examples.py -q -p no:logging

# scripts/kafka-dev down/up ten times in a row (restarts the shared broker).
kafka-dev-test: dev
	$(BIN)/python -m pytest tests/release/test_kafka_dev.py -q -p no:logging

# Docs are tests: every Python block of README.md and docs/, every examples/*.py,
# and the recipes under their real servers (tests/docs, tests/recipes).
docs-examples: dev broker-up
	$(BIN)/python -m pytest tests/docs tests/recipes -q -p no:logging

# Every target above but bench, arranged by scripts/test-all to fit under 30
# minutes on 2 cores (lanes side by side; the matrix, package and docs checks
# in the background).
test:
	scripts/test-all

proto:
	scripts/gen-proto

clean:
	rm -rf $(VENV) .venv-* .cache build dist site .coverage .pytest_cache .mypy_cache
