# The two set-up commands from the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Logs an example run to examples/runstore (the default ./runstore of the script's
# working directory) and serves it on 127.0.0.1.
demo: $(STAMP)
	cd examples && ../$(PY) train.py
	$(VENV)/bin/runstore ui examples/runstore

lint: $(STAMP)
	$(VENV)/bin/ruff check runstore datasette_plugins tests benchmarks examples

test: $(STAMP) lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) examples/runstore
