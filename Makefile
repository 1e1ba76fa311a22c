# The two commands of the README: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run test lint types imports pytest

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install
	$(UV) run meterline init
	$(UV) run meterline serve

lint: install
	$(UV) run ruff check src tests
	$(UV) run ruff format --check src tests

types: install
	$(UV) run mypy

imports: install
	$(UV) run lint-imports

pytest: install
	$(UV) run pytest

test: lint types imports pytest
