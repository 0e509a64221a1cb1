# Two commands are the contract with a new user (README.rst): `make demo` and `make test`.
# Both create or refresh .venv from the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv browsers test demo upgrade clean migrate bench fuzz prodlike

help:
	@echo "make demo      run the service with demo data and the upstream emulator (SQLite);"
	@echo "               other ports: make demo PORT=18100 EMULATOR_PORT=18370"
	@echo "make test      run the test suite (SQLite, in-memory cache)"
	@echo "make upgrade   recompile requirements/*.txt from requirements/*.in"
	@echo "make fuzz      a long schemathesis run against the API"
	@echo "make prodlike  gunicorn -w 4 on production settings + MariaDB + Redis + the emulator (foreground)"
	@echo "make bench     every benchmark: redeem load on the prodlike stack, hot path, attempt overhead, bulk forcing"

$(STAMP): requirements/test.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/test.txt
	@touch $(STAMP)

venv: $(STAMP)

# The admin browser tests drive Debian's chromium through Playwright (never Playwright's own browser download).
browsers:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

test: $(STAMP) browsers
	$(VENV)/bin/pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

# The demo's ports on 127.0.0.1: `make demo PORT=18100 EMULATOR_PORT=18370` runs a second demo beside the first.
# run_demo checks both ports before it starts anything, then migrates the demo's own database (decision 0017).
PORT ?= 18000
EMULATOR_PORT ?= 18270
demo: $(STAMP)
	$(PY) manage.py run_demo --port $(PORT) --emulator-port $(EMULATOR_PORT)

upgrade:
	@test -x $(VENV)/bin/pip-compile || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet pip-tools; }
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file base.txt base.in
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file test.txt test.in
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file dev.txt dev.in

clean:
	rm -rf var/ .pytest_cache

# The production-like stack: MariaDB (127.0.0.1:3306, root) and Redis (127.0.0.1:6379) must be running.
# Foreground; Ctrl-C stops gunicorn and the emulator. PRODLIKE_ARGS e.g. "--fresh --learners 1000".
# Schema fuzzing, longer than the bounded run in the test suite. `--seed N` in FUZZ_ARGS replays a run.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	$(PY) bench/fuzz.py --examples $(FUZZ_EXAMPLES) $(FUZZ_ARGS)

prodlike: $(STAMP)
	$(PY) bench/prodlike.py $(PRODLIKE_ARGS)

# Every benchmark, one after the other; each prints a table and a JSON line. redeem_load starts and stops its
# own production-like stack (database enterprise_access_bench, Redis db 12, ports 18002/18272).
# attempt_overhead runs 100 redeems per mode: its default 150 (301 redeems x 199 USD) exceeds the demo policy's 50,000 USD
# spend limit and it fails with policy_spend_limit_reached.
# BENCH_SCALE_ROWS=200000 also runs the attempt-table scale benchmark (off by default: it takes minutes).
BENCH_SCALE_ROWS ?=
# bulk_forcing uploads, saves and forces this many rows through a real Celery worker (about two minutes for 1,000);
# BENCH_BULK_ROWS=0 skips it.
BENCH_BULK_ROWS ?= 1000
bench: $(STAMP)
	@status=0; \
	echo "== bench/redeem_load.py"; $(PY) bench/redeem_load.py || status=1; \
	echo "== bench/hot_path.py"; $(PY) bench/hot_path.py || status=1; \
	echo "== bench/attempt_overhead.py"; $(PY) bench/attempt_overhead.py || status=1; \
	if [ "$(BENCH_BULK_ROWS)" != "0" ]; then \
	  echo "== bench/bulk_forcing.py --rows $(BENCH_BULK_ROWS)"; \
	  $(PY) bench/bulk_forcing.py --rows $(BENCH_BULK_ROWS) || status=1; fi; \
	if [ -n "$(BENCH_SCALE_ROWS)" ]; then \
	  echo "== bench/attempt_table_scale.py --rows $(BENCH_SCALE_ROWS)"; \
	  $(PY) bench/attempt_table_scale.py --rows $(BENCH_SCALE_ROWS) || status=1; fi; \
	exit $$status
