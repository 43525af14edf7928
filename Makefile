# diagnosticpro.dr: every entry point a developer, CI or an on-call SRE needs.
#   make demo   install what is missing, start the sandbox, run backup -> verify -> loss -> recover
#   make test   the whole suite (lint + unit + integration + molecule)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The checkout is the collection: ansible.cfg points collections_path at .collections/.
COLL_LINK := .collections/ansible_collections/diagnosticpro/dr
# PostgreSQL refuses to run as root; the sandbox and the tests run it as this user.
SANDBOX_USER ?= drpg
# Size of the sandbox dataset in MB (the benchmarks use 1024 and 3072).
SANDBOX_SIZE_MB ?= 64
PYTEST_ARGS ?=

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(shell pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin):$(PATH)

.PHONY: help install sandbox-up sandbox-down sandbox-status demo test test-fast unit integration lint bench clean

help:
	@echo "make demo          sandbox up, backup, verify, simulated loss, recover, summary"
	@echo "make test          the whole suite (lint, unit, integration, molecule)"
	@echo "make test-fast     everything but the tests marked slow"
	@echo "make sandbox-up    start PostgreSQL + GCS emulator under .sandbox/ (SANDBOX_SIZE_MB=$(SANDBOX_SIZE_MB))"
	@echo "make sandbox-down  stop them"
	@echo "make bench         benchmarks; results in docs/benchmarks.md"
	@echo "make lint          ansible-test sanity, ansible-lint, yamllint, ruff"

install: $(STAMP) $(COLL_LINK)

# System packages first (bindep says what is missing), then the virtualenv.
$(STAMP): requirements.txt requirements-dev.txt bindep.txt
	@if [ ! -x $(BIN)/python ]; then $(PYTHON) -m venv $(VENV); fi
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet bindep==2.14.0
	@missing="$$($(BIN)/bindep -b -f bindep.txt || true)"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@if [ "$$(id -u)" = 0 ] && ! id -u $(SANDBOX_USER) >/dev/null 2>&1; then \
	  echo "Creating unprivileged user $(SANDBOX_USER) for PostgreSQL"; \
	  useradd --system --user-group --no-create-home --shell /usr/sbin/nologin $(SANDBOX_USER); \
	fi
	@touch $@

$(COLL_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

sandbox-up: install
	$(BIN)/python -m sandbox up --size-mb $(SANDBOX_SIZE_MB)

sandbox-down: install
	$(BIN)/python -m sandbox down

sandbox-status: install
	$(BIN)/python -m sandbox status

demo: install
	$(BIN)/python -m sandbox demo --size-mb $(SANDBOX_SIZE_MB)

# Unit-test coverage of plugins/module_utils is reported at the end (pyproject.toml [tool.coverage]).
test: install lint
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

bench: install
	$(BIN)/bindep -b -f bindep.txt bench >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -qq $$($(BIN)/bindep -b -f bindep.txt bench); }
	$(BIN)/python -m bench $(BENCH_ARGS)

-include mk/*.mk

clean:
	-$(BIN)/python -m sandbox down 2>/dev/null
	rm -rf .sandbox .collections build tests/output .pytest_cache .coverage htmlcov
