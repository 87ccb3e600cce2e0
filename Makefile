# Two commands set everything up: `make run` (the product, embedded defaults) and
# `make test` (the suite). Both create the virtual environment when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000
# Where Segment reaches this install; shown on the integration page.
export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: run test lint format bench migrate install install-test screenshots clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3.x (>= 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	$(PY) manage.py migrate --noinput

# Web + Celery worker (every queue) + Celery beat, on SQLite and the filesystem broker unless
# DATABASE_URL / CELERY_BROKER_URL say otherwise. DEMO=1 loads a small demo workspace.
run: migrate
	$(PY) manage.py bootstrap $(if $(DEMO),--demo,) --host $(HOST) --port $(PORT)
	WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

test: install-test
	@bash scripts/ensure_chromium.sh || echo "chromium unavailable: browser tests will be skipped"
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
