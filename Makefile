# The two commands of the README: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run test lint types imports pytest bench bench-deps chromium

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install
	$(UV) run meterline init
	$(UV) run meterline serve

lint: install
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench

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

# Benchmarks side by side with nginx, Portkey and LiteLLM (issue 7): installs what it needs,
# runs every scenario (≈ 15 minutes on 2 cores, plus ≈ 25 for the 10M-event scale test;
# PostgreSQL on 127.0.0.1:5432 and Redis on 6379 must be up), then writes bench/RESULTS.md
# (beside the earlier passes kept in bench/raw/<commit>-main/). BENCH_ARGS passes options to bench/run.py,
# e.g. `make bench BENCH_ARGS="--quick"` for a 2-second smoke run.
BENCH_ARGS ?= --scale 10000000
PORTKEY = bench/.node/node_modules/@portkey-ai/gateway/build/start-server.js

bench-deps: install
	@command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx; }
	@test -f $(PORTKEY) || { cd bench/.node && npm install --no-audit --no-fund; }
	@test -x bench/.litellm-venv/bin/litellm || \
		{ python3 -m venv bench/.litellm-venv && bench/.litellm-venv/bin/pip install -q 'litellm[proxy]'; }
	@test -x bench/.tools-venv/bin/py-spy || \
		{ python3 -m venv bench/.tools-venv && bench/.tools-venv/bin/pip install -q py-spy; }

bench: bench-deps
	$(UV) run python bench/run.py $(BENCH_ARGS)
	$(UV) run python bench/report.py --repeat bench/raw/5da9f6e-main/results.json
