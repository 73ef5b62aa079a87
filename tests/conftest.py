"""Shared fixtures: every test gets its own working directory and a clean environment.

Only fixtures live here; the helpers tests import are in helpers.py (and ui_helpers.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import runstore
from runstore import _lifecycle


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        # RUNSTORE_PURE_PYTHON stays: make test runs part of the suite again with it.
        if name.startswith(("RUNSTORE_", "WANDB_")) and name != "RUNSTORE_PURE_PYTHON":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNSTORE_SILENT", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
    for run in _lifecycle.active_runs():
        run.finish()
    # Rings a test made itself (not through a run) live in /dev/shm behind a link in its
    # tmp_path, which pytest's clean-up removes without them.
    for link in tmp_path.rglob("*.ring"):
        if link.is_symlink():
            Path(os.readlink(link)).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _ui_tests_are_marked(request, monkeypatch):
    """A test that builds a Datasette must be marked `ui` (make test-datasette-1 runs those
    again on Datasette 1.0): building one in a test that is not marked fails."""
    if request.node.get_closest_marker("ui") is not None:
        return
    from datasette.app import Datasette

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} builds a Datasette: mark it "
                             "@pytest.mark.ui, so it runs on Datasette 1.0 too")

    monkeypatch.setattr(Datasette, "__init__", refuse)


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def new_run(store_dir):
    def make(**kwargs):
        kwargs.setdefault("dir", store_dir)
        kwargs.setdefault("project", "proj")
        return runstore.init(**kwargs)
    return make
