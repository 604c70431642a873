# deployflow: `make test` and `make demo` work on a fresh Debian machine (root installs the
# system packages; elsewhere they are listed and tests that need them skip outside CI).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STRATEGY ?= canary
SCENARIO ?=
PLATFORM ?=

.PHONY: help bootstrap system-packages test lint fmt demo down

help:
	@echo "make test                 lint, type-check and run the test suite (bootstraps first)"
	@echo "make demo [STRATEGY=...]  local stack + a good and a bad rollout; STRATEGY is canary"
	@echo "                          (default), blue-green, rolling or recreate; or pipeline:"
	@echo "                          staging -> approval -> production, then an emergency rollback"
	@echo "make demo SCENARIO=incident  an alert becomes a PagerDuty page, a Slack thread and a"
	@echo "                          restart (Alertmanager -> deployflow serve -> incident runbook)"
	@echo "make demo SCENARIO=self-healing  a scheduled monitor finds the service hung, then"
	@echo "                          leaking: restarts within a budget, then a page once it is spent"
	@echo "make demo PLATFORM=kubernetes  the canary demo on Kubernetes Deployments and an"
	@echo "                          ingress-nginx canary Ingress: the cluster in KUBECONFIG, else"
	@echo "                          deployflow's API server double (no pods run; local processes"
	@echo "                          stand in for each version); stops everything at the end"
	@echo "make down                 stop the demo stack"
	@echo "make lint | make fmt      ruff + mypy | apply ruff's formatting and fixes"

bootstrap: system-packages $(VENV)/.installed

# Checked on every run (cheap), so a removed package is noticed. The Debian packages start
# their own services on install in some environments; nothing here uses them (the demo and
# the tests run their own nginx/prometheus/alertmanager on other ports with their own
# configs), so a temporary policy-rc.d (exit 101 = "do not start services") keeps them from
# starting.
system-packages:
	@missing=""; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v prometheus >/dev/null || [ -x /usr/bin/prometheus ] || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || [ -x /usr/bin/prometheus-alertmanager ] \
		|| missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v shellcheck >/dev/null || missing="$$missing shellcheck"; \
	[ -x $(BIN)/python ] || $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "==> apt-get install$$missing"; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod +x /usr/sbin/policy-rc.d; \
		fi; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
			>/dev/null; \
	else \
		echo "note: not installed:$$missing (Debian: sudo apt-get install$$missing)."; \
		echo "      Tests that need them are skipped, or fail under CI."; \
	fi

$(BIN)/python: | system-packages
	$(PYTHON) -m venv $(VENV)

# Re-installs whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> pip install -e '.[dev]' (log: $(VENV)/pip.log)"
	@$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]' >$(VENV)/pip.log 2>&1 \
		|| { tail -n 30 $(VENV)/pip.log; exit 1; }
	@touch $@

# Most tests wait on real servers (Temporal, NGINX, Prometheus), not on the CPU: three
# workers on two cores run the suite in about a fifth of the serial time (5.4 min against
# 25 min on a loaded 2-core machine). `--dist loadfile` keeps each module's shared servers
# in one worker. PYTEST_WORKERS=0 runs it serially.
PYTEST_WORKERS ?= 3

test: bootstrap
	@echo "==> ruff check"
	@$(BIN)/ruff check .
	@echo "==> ruff format --check"
	@$(BIN)/ruff format --check .
	@echo "==> mypy"
	@$(BIN)/mypy
	@echo "==> pytest ($(PYTEST_WORKERS) workers, one test file per worker at a time)"
	@$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: bootstrap
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: bootstrap
	$(BIN)/python examples/demo/run.py --strategy $(STRATEGY)$(if $(SCENARIO), --scenario $(SCENARIO))$(if $(PLATFORM), --platform $(PLATFORM))

# By the PIDs the stack recorded in .state/demo/pids/ (and the host agent in
# .state/demo/hosts/), never by process name.
down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python examples/demo/stack.py down; \
	else echo "no $(BIN)/python: nothing was started by this Makefile"; fi
