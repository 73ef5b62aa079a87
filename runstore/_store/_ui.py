"""Reads for the Datasette UI: store detection and run pages (chart data: `_chart`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._branching import last_step, lineage
from ._chart import metric_points as metric_points  # re-exported
from ._read import get_run_by_key
from ._run_extras import chart_keys


def is_runstore(conn: sqlite3.Connection) -> bool:
    """True if the database has the tables of a runstore store (`runs` is a view since
    schema version 8, a table before)."""
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view')"
        " AND name IN ('runs', 'metric_keys', 'history')"
    ).fetchone()
    return row[0] == 3


def run_status(conn: sqlite3.Connection, run_key: int) -> dict[str, Any] | None:
    """What a live run page polls (cheap: no count of its steps): the run row, its
    metric keys (those drawn as charts: not media) and last step; None if there is
    no such run."""
    run = get_run_by_key(conn, run_key)
    if run is None:
        return None
    # Media keys (images, histograms, tables, videos) are shown as media, not charts.
    return {"run": run, "metric_keys": chart_keys(conn, run_key),
            "last_step": last_step(conn, run_key)}


def run_page(conn: sqlite3.Connection, run_key: int) -> dict[str, Any] | None:
    """Everything the run page needs in one trip: the run row, its lineage and fork
    parent, its metric keys and step statistics; None if there is no such run."""
    status = run_status(conn, run_key)
    if status is None:
        return None
    (steps,) = conn.execute(
        "SELECT count(*) FROM steps WHERE run_key = ?", (run_key,)
    ).fetchone()
    parent = status["run"].get("parent_run_key")
    return {
        **status,
        "step_count": steps,
        "lineage": lineage(conn, run_key),
        "parent": get_run_by_key(conn, parent) if parent is not None else None,
    }
