"""Shared fixtures: every test gets its own working directory and a clean environment."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import runstore
from runstore import _lifecycle

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("RUNSTORE_", "WANDB_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RUNSTORE_SILENT", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield
    for run in _lifecycle.active_runs():
        run.finish()


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


def query(store_dir: Path, sql: str, params=()) -> list[tuple]:
    """Raw SQL against a store, with a connection of its own."""
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def run_script(code: str, cwd: Path, env: dict | None = None, timeout: float = 60):
    """Run Python code in a real child process; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def new_run(store_dir):
    def make(**kwargs):
        kwargs.setdefault("dir", store_dir)
        kwargs.setdefault("project", "proj")
        return runstore.init(**kwargs)
    return make
