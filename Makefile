# The two set-up commands from the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench peers-venv clean

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

# Peer trackers (MLflow, trackio, wandb) for the side-by-side benchmark, in their own
# virtualenv so they never touch the project's. Not needed by `make test`. Each peer is
# installed on its own, so one that fails to install is skipped by benchmarks/peers.py.
PEERS_VENV := benchmarks/.peers-venv
PEERS_PY := $(PEERS_VENV)/bin/python
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS := mlflow trackio wandb
PEERS_PIP := $(PEERS_PY) -m pip install --quiet

$(PEERS_STAMP):
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PIP) --upgrade pip
	$(PEERS_PIP) numpy
	for p in $(PEERS); do $(PEERS_PIP) $$p \
	  || echo "peers-venv: $$p failed to install; benchmarks/peers.py will skip it"; done
	touch $(PEERS_STAMP)

peers-venv: $(PEERS_STAMP)

bench: $(STAMP) $(PEERS_STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(PEERS_VENV) examples/runstore
