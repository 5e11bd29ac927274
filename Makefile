# quantdesk: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# The stamp records the inputs of the last install; a second run reinstalls nothing.
STAMP := $(VENV)/.installed
# No NUMBA_CACHE_DIR here: quantdesk picks one shared cache itself (quantdesk.numba_cache),
# so what `make demo` compiles is what notebooks, reports and cron jobs load.
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install browser demo lab test lint typecheck bench clean help

help:
	@echo "make demo   - set up .venv, fill the store, run the demo reports, print how to open them and the monitor"
	@echo "make lab    - JupyterLab at the project root, on this project's store (start with notebooks/quickstart.ipynb)"
	@echo "make test   - set up .venv, lint, type-check and run the test suite"
	@echo "make bench  - run the benchmark table (not part of make test)"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
	# torch first, pinned to the local CPU build: an unpinned torch pulls GBs of CUDA wheels.
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

install: $(STAMP)

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@chromium --version

demo: install
	$(VENV)/bin/quantdesk ingest sample
# The simulated history ends on the session before the latest closed one, so the closing
# `pipeline run` advances it exactly one session (quantdesk.pipeline.steps.demo_start).
	start=$$($(PY) -c 'from quantdesk.pipeline.steps import demo_start; print(demo_start(2520).date())') && \
	$(VENV)/bin/quantdesk ingest simulate --symbols 50 --days 2520 --seed 7 --start $$start && \
	$(VENV)/bin/quantdesk news demo --symbols 50 --days 2520 --seed 7 --start $$start
# Synthetic headlines (above) whose tone follows the simulated regimes, scored by what
# `auto` finds here (FinBERT when its weights are local, else the lexicon: seconds).
	$(VENV)/bin/quantdesk sentiment score --model auto
	$(VENV)/bin/quantdesk data info
	@$(PY) -c 'from quantdesk.backtest.warmup import warm_numba_cache as w; print("numba cache (warm):", w())'
	$(VENV)/bin/quantdesk report batch demo
# The evening pipeline on the demo store: the next session's bars, regimes, news scores,
# alerts, the `paper` ledger's rebalance and the evening reports; a second run does
# nothing ("no session due") until the next session closes.
	$(VENV)/bin/quantdesk pipeline run
	@echo "reports: $$($(PY) -c 'from quantdesk.config import settings; print((settings().reports_dir / "index.html").resolve())')"
	@echo "market monitor: run '$(VENV)/bin/quantdesk dashboard' and open http://127.0.0.1:5006/"

# JupyterLab at the project root with .venv's kernels; every notebook under it finds
# data/quantdesk.duckdb by the store rule (quantdesk.config).  ARGS go to JupyterLab.
lab: install
	$(VENV)/bin/quantdesk lab $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

# The suite runs on every core (pytest-xdist), a test file per worker at a time so that a
# module's shared servers and browser start once; PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
# pytest exits 5 when it collected no test: that is a failure, never a silent pass.
# --durations=25 prints the slowest tests: where the suite's time goes, in every CI log.
test: lint typecheck browser
	@$(PY) -m pytest --durations=25 $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache .mypy_cache .ruff_cache
