# Two commands: `make run` (server on the embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEV := DEBUG=1

.PHONY: run test lint screenshots install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

WORKER_LOG := var/worker.log

## run: install, migrate, load the demo data, print the demo hashtag, serve on http://$(HOST):$(PORT)/
## with a task worker beside the server (batches, recalibrations), stopped with it
run: install
	$(DEV) $(BIN)/python manage.py migrate --noinput -v0
	$(DEV) $(BIN)/python manage.py demo --url http://$(HOST):$(PORT)/
	@echo "task worker: log in $(WORKER_LOG)"
	@$(DEV) $(BIN)/python manage.py run_worker >>$(WORKER_LOG) 2>&1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(DEV) $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

## test: install, lint, then the whole suite on SQLite and on a temporary PostgreSQL server
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	GSA_TEST_DB=postgres $(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

## screenshots: refresh docs/screenshots/ (the main pages at 1400 px and 390 px, in Chromium)
screenshots: install-dev
	GSA_SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_pages_browser.py -k test_screenshots -q
