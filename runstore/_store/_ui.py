"""Reads for the Datasette UI: store detection, run pages and downsampled chart data."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._branching import lineage
from ._read import get_run_by_key, run_metric_keys

# The largest finite double: `abs(value) <= _MAX_FINITE` keeps finite numbers and
# drops +/-inf, which JSON cannot carry (NaN is already stored as NULL or JSON).
_MAX_FINITE = 1.7976931348623157e308
_POINTS = (
    "FROM history WHERE run_key = ? AND key_id = ? AND step BETWEEN ? AND ?"
    " AND value IS NOT NULL AND abs(value) <= ?"
)
DEFAULT_MAX_POINTS = 4000


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


def metric_points(
    conn: sqlite3.Connection,
    run_key: int,
    key: str,
    *,
    min_step: int | None = None,
    max_step: int | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> dict[str, Any]:
    """The numeric points of one metric of one run, in step order.

    Non-numeric and non-finite values are left out. If the step range holds more
    than `max_points` points they are downsampled with M4: the range is cut into
    `max_points // 4` equal step buckets and each keeps its first, min, max and
    last point, so spikes survive. Returns a dict with `steps`, `values`,
    `total` (points in range) and `downsampled`.
    """
    result: dict[str, Any] = {
        "key": key, "steps": [], "values": [], "total": 0, "downsampled": False,
    }
    row = conn.execute("SELECT key_id FROM metric_keys WHERE key = ?", (key,)).fetchone()
    if row is None:
        return result
    key_id = row[0]
    lo, hi, total = conn.execute(
        "SELECT min(step), max(step), count(*) " + _POINTS,
        (
            run_key, key_id,
            -(2**63) if min_step is None else min_step,
            2**63 - 1 if max_step is None else max_step,
            _MAX_FINITE,
        ),
    ).fetchone()
    if not total:
        return result
    result["total"] = total
    params = (run_key, key_id, lo, hi, _MAX_FINITE)
    max_points = max(int(max_points), 8)
    if total <= max_points:
        rows = conn.execute("SELECT step, value " + _POINTS + " ORDER BY step", params)
        points = rows.fetchall()
    else:
        points = _m4(conn, run_key, key_id, lo, hi, max_points // 4)
        result["downsampled"] = True
    result["steps"] = [p[0] for p in points]
    result["values"] = [p[1] for p in points]
    return result


def _m4(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int, buckets: int
) -> list[tuple[int, float]]:
    """First/min/max/last point of each of `buckets` equal step ranges in [lo, hi]."""
    width = -(-(hi - lo + 1) // buckets)  # ceiling division
    first_sql = "SELECT step, value " + _POINTS + " ORDER BY step LIMIT 1"
    last_sql = "SELECT step, value " + _POINTS + " ORDER BY step DESC LIMIT 1"
    # With exactly one min() or max(), SQLite takes the bare column `step` from
    # the row holding that extreme.
    min_sql = "SELECT step, min(value) " + _POINTS
    max_sql = "SELECT step, max(value) " + _POINTS
    out: list[tuple[int, float]] = []
    start = lo
    while start <= hi:
        # Jump straight to the bucket holding the next point: sparse ranges cost
        # one query per non-empty bucket, not one per bucket.
        first = conn.execute(first_sql, (run_key, key_id, start, hi, _MAX_FINITE)).fetchone()
        if first is None:
            break
        start = lo + (first[0] - lo) // width * width
        end = min(start + width - 1, hi)
        params = (run_key, key_id, start, end, _MAX_FINITE)
        found = {first[0]: first[1]}
        for sql in (min_sql, max_sql, last_sql):
            step, value = conn.execute(sql, params).fetchone()
            found[step] = value
        out.extend(sorted(found.items()))
        start = end + 1
    return out
