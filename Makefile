# Treadle's tasks. `make demo` and `make test` are the README's two commands.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo examples test unit lint services browser bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install  ## install, then serve the example REST app on the embedded SQLite default
	@echo "Serving examples/apps/rest-crud on http://127.0.0.1:8081 (store: ./.treadle/treadle.db)."
	@echo "Try: curl -s 127.0.0.1:8081/books  |  API: curl -s 127.0.0.1:8081/api/v1/executions"
	@echo "Ctrl-C to stop."
	mkdir -p .treadle && BOOKS_DB=$(CURDIR)/.treadle/books.db $(VENV)/bin/treadle serve examples/apps/rest-crud/app.yaml

examples: install  ## run the Python example workflows on the embedded SQLite default
	$(PY) examples/run_all.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

services:  ## start the machine's PostgreSQL, Redis, NATS... if they are down
	bash scripts/services.sh

browser:  ## Debian's Chromium for the web UI's tests (Playwright drives it; no browser download)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq chromium >/dev/null; } || echo "make: could not install chromium: the UI tests will skip (fail in CI)" >&2

test: install services browser lint  ## install, then run every test
	$(PY) -m pytest -q

unit: install
	$(PY) -m pytest -q tests/unit

bench: install  ## benchmarks: JSON in bench/results/, a table on stdout
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .treadle bench/results .pytest_cache .mypy_cache .ruff_cache
