# Dockyard — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# Compile every installed package to bytecode at install time: an environment with PYTHONDONTWRITEBYTECODE set
# (this machine kind has it) would otherwise recompile each module in every new process — every server start,
# worker and CLI run.
export UV_COMPILE_BYTECODE := 1

.PHONY: help run install test coverage lint typecheck bench system-deps node-deps venv dev clean api-docs

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

venv: $(UV) ## Create .venv and install Dockyard from the lock file
	$(UV) sync --frozen --inexact --no-dev --python $(VENV)/bin/python
	@# Dockyard itself is installed editable (uv compiles only the packages it copies): its bytecode too, so that
	@# a start with PYTHONDONTWRITEBYTECODE set reads it instead of compiling every module (~1.3 s a start here).
	$(VENV)/bin/python -m compileall -q src

run: venv ## Install and start Dockyard on http://127.0.0.1:5000 (SQLite + files under ./data)
	$(VENV)/bin/dockyard serve

install: venv ## Put `dockyard` on the PATH: a link in ~/.local/bin to .venv/bin/dockyard
	mkdir -p $(HOME)/.local/bin
	ln -sf $(CURDIR)/$(VENV)/bin/dockyard $(HOME)/.local/bin/dockyard
	@echo "linked $(HOME)/.local/bin/dockyard -> $(CURDIR)/$(VENV)/bin/dockyard (is ~/.local/bin on your PATH?)"

system-deps: ## Install the system tools the tests use (apt-get, when root)
	bash scripts/install-system-deps.sh

node-deps: ## Install the npm packages the tests use (npm ci: the OpenID provider of the single sign-on tests)
	bash scripts/install-node-deps.sh

dev: $(UV) ## Install Dockyard and the development tools from the lock file
	$(UV) sync --frozen --inexact --python $(VENV)/bin/python

lint: dev ## ruff (lint and format check) and the import-layer contracts
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

typecheck: dev ## mypy --strict on src/, tests/ and bench/ (pyproject.toml: [tool.mypy])
	$(VENV)/bin/mypy

api-docs: dev ## Regenerate the Docker Hub compatibility table of docs/api.md from tests/api/data
	$(VENV)/bin/python -m tests.support.hub_parity

# The checks (ruff, import-linter, mypy: ~35 CPU-s on a fresh clone) run beside the suite, not before it: the
# suite leaves a fifth of two cores idle. Their output is printed as soon as they end; either failing fails `make test`.
test: system-deps dev node-deps ## Install everything; lint and type-check beside the whole suite
	@checks=$$(mktemp); \
	( $(MAKE) --no-print-directory lint typecheck >"$$checks" 2>&1; status=$$?; \
	  if [ $$status -eq 0 ]; then echo "=== lint and type-check: passed ==="; \
	  else cat "$$checks"; echo "=== lint and type-check: FAILED ==="; fi; exit $$status ) & checks_pid=$$!; \
	bash scripts/run-tests.sh; tests=$$?; \
	wait $$checks_pid; lint=$$?; rm -f "$$checks"; \
	[ $$lint -eq 0 ] || echo "=== make test: lint or type-check FAILED (above) ==="; \
	[ $$tests -eq 0 ] && [ $$lint -eq 0 ]

coverage: system-deps dev node-deps ## Run the whole suite under coverage (servers included) and print the report
	rm -rf .coverage-data && mkdir -p .coverage-data
	DOCKYARD_COVERAGE=1 bash scripts/run-tests.sh; status=$$?; \
	$(VENV)/bin/python -m coverage combine -q && $(VENV)/bin/python -m coverage report; exit $$status

bench: system-deps dev ## Side-by-side benchmark against the reference registry (docker-registry)
	$(VENV)/bin/python -m bench.run

clean: ## Remove the venv and caches (not ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
