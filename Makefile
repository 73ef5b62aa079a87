# The two set-up commands from the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench peers-venv clean

# The install compiles runstore/_fastlog.c (hatch_build.py): a change to either rebuilds.
$(STAMP): pyproject.toml hatch_build.py runstore/_fastlog.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The demo installs only what it needs: runstore itself (its runtime dependencies) and
# numpy for examples/train.py, not the test extras (docs/BENCHMARKS.md, "make demo").
# `make test` later adds the test extras to the same .venv.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml hatch_build.py runstore/_fastlog.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e . 'numpy>=1.24'
	touch $(DEMO_STAMP)

.PHONY: install-demo
install-demo: $(DEMO_STAMP)

# Logs an example run to examples/runstore (the default ./runstore of the script's
# working directory) and serves it on 127.0.0.1.
demo: $(DEMO_STAMP)
	cd examples && ../$(PY) train.py
	$(VENV)/bin/runstore ui examples/runstore

# ruff, and the tests of the declared seams between the library and the plugin
# (tests/test_package.py -k seam: which modules each side may import from the other).
lint: $(STAMP)
	$(VENV)/bin/ruff check runstore datasette_plugins tests benchmarks examples hatch_build.py
	$(VENV)/bin/mypy runstore datasette_plugins
	$(PY) -m pytest -q -p no:cacheprovider tests/test_package.py -k seam

# Two pytest workers (pytest-xdist): most tests wait on child processes, SQLite and the
# browser, so two halve the suite's time on a 2-core machine (14:47 -> 9:07 under load).
PYTEST_WORKERS := -n auto --maxprocesses 2

test: $(STAMP) lint
	$(PY) -m pytest $(PYTEST_WORKERS)
	$(MAKE) --no-print-directory test-pure-python
	$(MAKE) --no-print-directory test-datasette-1

# log()'s common call runs in C (runstore/_fastlog.c) when the install compiled it; the
# tests of logging and the hand-off run again on the Python path that machines without
# a compiler use.
PURE_PYTHON_TESTS := tests/test_log.py tests/test_fastlog.py tests/test_fastlog_attack.py \
	tests/test_handoff.py \
	tests/test_packed_attack.py tests/test_crash_loss.py tests/test_summary_config.py \
	tests/test_values.py tests/test_concurrency.py

.PHONY: test-pure-python
test-pure-python: $(STAMP)
	RUNSTORE_PURE_PYTHON=1 $(PY) -m pytest -p no:cacheprovider $(PYTEST_WORKERS) $(PURE_PYTHON_TESTS)

# The UI tests (those marked `ui`: they build a Datasette or start `runstore ui`) again on
# Datasette's 1.0 alpha line (.venv has the stable line), in a virtualenv of their own; the
# plugin supports both through its compat.py. The stamp names the pinned alpha, so
# changing DATASETTE1 reinstalls.
DATASETTE1 := 1.0a41
DS1_VENV := .venv-datasette1
DS1_PY := $(DS1_VENV)/bin/python
DS1_STAMP := $(DS1_VENV)/.installed-$(DATASETTE1)

$(DS1_STAMP): pyproject.toml hatch_build.py runstore/_fastlog.c
	$(PYTHON) -m venv $(DS1_VENV)
	$(DS1_PY) -m pip install --quiet --upgrade pip
	$(DS1_PY) -m pip install --quiet -e '.[test]' 'datasette==$(DATASETTE1)'
	touch $(DS1_STAMP)

.PHONY: test-datasette-1
test-datasette-1: $(DS1_STAMP)
	$(DS1_PY) -m pytest -p no:cacheprovider -m ui $(PYTEST_WORKERS)

# The training libraries running unchanged under RUNSTORE_AS_WANDB (tests/integrations):
# transformers, Lightning, SB3 and Keras in .venv, with torch pinned to the CPU build and
# installed first (an unpinned torch, or a range admitting a newer one, pulls a multi-GB
# CUDA build); the CleanRL-style test again with gymnasium 0.29 (CleanRL's pin, which
# cannot live beside .venv's gymnasium 1.x) in a small virtualenv of its own. `make test`
# runs them; without RUNSTORE_INTEGRATION_TESTS=1 (plain `pytest`) they are skipped.
TORCH := torch==2.13.0
INT_STAMP := $(VENV)/.installed-integrations
GYM029_VENV := .venv-gym029
GYM029_PY := $(GYM029_VENV)/bin/python
GYM029_STAMP := $(GYM029_VENV)/.installed

$(INT_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet '$(TORCH)'
	$(PY) -m pip install --quiet '$(TORCH)' -e '.[test,integrations-test]'
	touch $(INT_STAMP)

$(GYM029_STAMP): pyproject.toml
	$(PYTHON) -m venv $(GYM029_VENV)
	$(GYM029_PY) -m pip install --quiet --upgrade pip
	$(GYM029_PY) -m pip install --quiet '$(TORCH)'
	$(GYM029_PY) -m pip install --quiet '$(TORCH)' -e . pytest tensorboard moviepy \
	  'gymnasium[classic-control]==0.29.1' 'numpy<2'
	touch $(GYM029_STAMP)

.PHONY: test-integrations
test-integrations: $(INT_STAMP) $(GYM029_STAMP)
	RUNSTORE_INTEGRATION_TESTS=1 $(PY) -m pytest -p no:cacheprovider tests/integrations
	RUNSTORE_INTEGRATION_TESTS=1 $(GYM029_PY) -m pytest -p no:cacheprovider \
	  tests/integrations/test_compat_cleanrl.py

test: test-integrations

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
	rm -rf $(VENV) $(DS1_VENV) $(GYM029_VENV) $(PEERS_VENV) examples/runstore
