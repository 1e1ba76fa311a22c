# The two commands of the README: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run test lint types imports pytest chromium

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

# The dashboard's browser tests drive Debian's Chromium (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }; }

pytest: install chromium
	$(UV) run pytest

test: lint types imports pytest
