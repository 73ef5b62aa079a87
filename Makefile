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
	$(MAKE) --no-print-directory test-datasette-1

# The UI route tests again on Datasette's 1.0 alpha line (.venv has the stable line),
# in a virtualenv of their own; the plugin supports both through its _compat.py. The
# stamp names the pinned alpha, so changing DATASETTE1 reinstalls.
DATASETTE1 := 1.0a41
DS1_VENV := .venv-datasette1
DS1_PY := $(DS1_VENV)/bin/python
DS1_STAMP := $(DS1_VENV)/.installed-$(DATASETTE1)
UI_TESTS := tests/test_ui.py tests/test_ui_edits.py tests/test_ui_serve.py tests/test_ui_compare.py \
	tests/test_ui_charts.py tests/test_ui_extras.py

$(DS1_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DS1_VENV)
	$(DS1_PY) -m pip install --quiet --upgrade pip
	$(DS1_PY) -m pip install --quiet -e '.[test]' 'datasette==$(DATASETTE1)'
	touch $(DS1_STAMP)

.PHONY: test-datasette-1
test-datasette-1: $(DS1_STAMP)
	$(DS1_PY) -m pytest -p no:cacheprovider $(UI_TESTS)

# The browser test (tests/test_browser.py) drives Debian's chromium: install it when it is
# missing and we can (root with apt-get; `apt-get update` only when the first try fails).
# Otherwise say so and go on; that test then skips and names what is missing.
CHROMIUM := /usr/bin/chromium
APT_GET := env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0

.PHONY: chromium
chromium:
	@[ -x $(CHROMIUM) ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && echo "installing Debian's chromium for tests/test_browser.py" \
	  && { $(APT_GET) install -y chromium >/dev/null 2>&1 \
	       || { $(APT_GET) update >/dev/null 2>&1 \
	            && $(APT_GET) install -y chromium >/dev/null 2>&1; }; }; } \
	  || echo "could not install Debian's chromium (needs root, apt-get, a mirror):" \
	          "tests/test_browser.py will skip"

test: chromium

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
	rm -rf $(VENV) $(DS1_VENV) $(PEERS_VENV) examples/runstore
