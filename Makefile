# Two commands set everything up: `make run` (the product, embedded defaults) and
# `make test` (the suite). Both create the virtual environment when it is missing and install
# the exact versions of the lock files (requirements.txt, requirements-test.txt: hashes
# checked), then the project itself without its dependencies. `make lock` refreshes the locks
# from pyproject.toml's ranges.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
# Where Segment reaches this install; shown on the integration page.
export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
# The same resolution for every platform, for the oldest Python the project supports.
UV_COMPILE := $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock"

.PHONY: run test lint format bench migrate install install-test lock screenshots clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3.x (>= 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Hash-checking mode refuses an editable install, so the project goes in second, --no-deps.
# The stamps depend on the lock files: a changed lock re-installs.
$(VENV)/.installed: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet --require-hashes -r requirements.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PIP) install --quiet --require-hashes -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Refresh the locks to the newest versions pyproject.toml's ranges allow (`make lock
# LOCK_ARGS=` keeps the current pins and only adds what changed in pyproject.toml). The test
# lock is constrained by the runtime lock, so both install the same versions of what they share.
LOCK_ARGS ?= --upgrade
lock: install-test
	$(UV_COMPILE) $(LOCK_ARGS) -o requirements.txt
	$(UV_COMPILE) $(LOCK_ARGS) --extra test -c requirements.txt -o requirements-test.txt

migrate: install
	$(PY) manage.py migrate --noinput

# Web (gunicorn) + a Celery worker for ingest + one for warehouse,default + Celery beat, on
# SQLite and the filesystem broker unless DATABASE_URL / CELERY_BROKER_URL say otherwise.
# DEMO=1 loads a small demo workspace.
run: migrate
	$(PY) manage.py bootstrap $(if $(DEMO),--demo,) --host $(HOST) --port $(PORT)
	VENV=$(VENV) WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

test: install-test
	@bash scripts/ensure_chromium.sh || echo "chromium unavailable: browser tests will be skipped"
	@bash scripts/ensure_analytics_js.sh >/dev/null || echo "analytics.js bundle unavailable: its browser test will be skipped"
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install-test
	$(PY) -m bench $(BENCH_ARGS)

screenshots: install-test
	SCREENSHOTS_DIR=docs $(VENV)/bin/pytest tests/browser -k screenshots -p no:cacheprovider

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
