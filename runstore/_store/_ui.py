"""Reads for the Datasette UI: store detection and run pages (chart data: `_chart`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._branching import lineage
from ._chart import metric_points as metric_points  # re-exported
from ._read import get_run_by_key, run_metric_keys


def is_runstore(conn: sqlite3.Connection) -> bool:
    """True if the database has the tables of a runstore store."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('runs', 'metric_keys', 'history')"
    ).fetchone()
    return row[0] == 3


def run_page(conn: sqlite3.Connection, run_key: int) -> dict[str, Any] | None:
    """Everything the run page needs in one trip: the run row, its lineage and fork
    parent, its metric keys
    and step statistics; None if there is no such run."""
    run = get_run_by_key(conn, run_key)
    if run is None:
        return None
    steps, last_step = conn.execute(
        "SELECT count(*), max(step) FROM steps WHERE run_key = ?", (run_key,)
    ).fetchone()
    parent = run.get("parent_run_key")
    return {
        "run": run,
        "lineage": lineage(conn, run_key),
        "parent": get_run_by_key(conn, parent) if parent is not None else None,
        "metric_keys": run_metric_keys(conn, run_key),
        "step_count": steps,
        "last_step": last_step,
    }
