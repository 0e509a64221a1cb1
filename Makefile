# Two commands are the contract with a new user (README.rst): `make demo` and `make test`.
# Both create or refresh .venv from the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv test test-prodstack demo upgrade clean migrate

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

test: $(STAMP)
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
