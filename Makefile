# Two commands are the contract with a new user (README.rst): `make demo` and `make test`.
# Both create or refresh .venv from the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv browsers test demo upgrade clean migrate bench

help:
	@echo "make demo      run the service with demo data and the upstream emulator (SQLite)"
	@echo "make test      run the test suite (SQLite, in-memory cache)"
	@echo "make upgrade   recompile requirements/*.txt from requirements/*.in"

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

demo: migrate
	$(PY) manage.py run_demo

upgrade:
	@test -x $(VENV)/bin/pip-compile || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet pip-tools; }
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file base.txt base.in
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file test.txt test.in
	cd requirements && ../$(VENV)/bin/pip-compile --quiet --strip-extras --upgrade --output-file dev.txt dev.in

clean:
	rm -rf var/ .pytest_cache
