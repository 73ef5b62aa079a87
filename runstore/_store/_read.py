"""Reads: runs and their history, for the read API and the UI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, cast

from ._json import loads
from ._runs import JSON_COLUMNS, RunRow

# Runs are read through the `runs` view, so their state and runtime are the ones every
# reader shows (schema/008_run_state.sql); `recorded_state` is the state as written,
# which liveness checks need (a paused process's run shows crashed but is still live).
_RUNS = ("SELECT v.*, r.state AS recorded_state FROM runs v"
         " JOIN run_records r ON r.run_key = v.run_key")


def _row_dict(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> RunRow:
    out: dict[str, Any] = {d[0]: v for d, v in zip(cur.description, row, strict=True)}
    for col in JSON_COLUMNS:
        if col in out:
            out[col] = loads(out[col], restore=col in ("summary", "config"))
    return cast(RunRow, out)  # the view's columns: tests/test_api.py checks they agree


def get_run(
    conn: sqlite3.Connection, project: str, run_id: str, entity: str | None = None
) -> RunRow | None:
    """One run's row as a dict, or None. Without an entity, the newest match wins."""
    sql = f"{_RUNS} WHERE v.project = ? AND v.id = ?"
    params: list[Any] = [project, run_id]
    if entity is not None:
        sql += " AND v.entity = ?"
        params.append(entity)
    cur = conn.execute(sql + " ORDER BY v.created_at DESC LIMIT 1", params)
    row = cur.fetchone()
    return None if row is None else _row_dict(cur, row)


def get_run_by_key(conn: sqlite3.Connection, run_key: int) -> RunRow | None:
    cur = conn.execute(f"{_RUNS} WHERE v.run_key = ?", (run_key,))
    row = cur.fetchone()
    return None if row is None else _row_dict(cur, row)


def list_runs(
    conn: sqlite3.Connection, project: str | None = None, entity: str | None = None
) -> list[RunRow]:
    """Runs, newest first, optionally of one project (and entity)."""
    clauses, params = [], []
    if project is not None:
        clauses.append("v.project = ?")
        params.append(project)
    if entity is not None:
        clauses.append("v.entity = ?")
        params.append(entity)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    cur = conn.execute(f"{_RUNS}{where} ORDER BY v.created_at DESC, v.run_key DESC", params)
    return [_row_dict(cur, row) for row in cur.fetchall()]


def find_key_id(conn: sqlite3.Connection, key: str) -> int | None:
    """The interned id of a metric key, or None if no run has logged it."""
    row = conn.execute("SELECT key_id FROM metric_keys WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def run_metric_keys(conn: sqlite3.Connection, run_key: int) -> list[str]:
    """The metric keys a run has history for, sorted."""
    # A skip-scan over the clustered history: one probe per distinct key.
    rows = conn.execute(
        "SELECT key FROM metric_keys k WHERE EXISTS "
        "(SELECT 1 FROM history h WHERE h.run_key = ? AND h.key_id = k.key_id) ORDER BY key",
        (run_key,),
    ).fetchall()
    return [r[0] for r in rows]


def scan_history(
    conn: sqlite3.Connection, run_key: int, keys: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Rows of history in step order, each a dict with `_step` and the keys.

    With `keys`, only those keys, and only steps where every one of them was
    logged (as wandb's scan_history). Without, every key plus `_runtime` and
    `_timestamp`.
    """
    if keys is not None:
        keys = list(dict.fromkeys(keys))
        ids = {}
        for key in keys:
            key_id = find_key_id(conn, key)
            if key_id is None:
                return
            ids[key_id] = key
        if len(ids) == 1:  # one metric: one range scan, rows straight out
            ((key_id, key),) = ids.items()
            cur = conn.execute(
                "SELECT step, value, value_json FROM history WHERE run_key = ? AND key_id = ?"
                " ORDER BY step", (run_key, key_id))
            for step, value, value_json in cur:
                yield {"_step": step,
                       key: value if value_json is None else json.loads(value_json)}
            return
        marks = ", ".join("?" * len(ids))
        cur = conn.execute(
            f"SELECT step, key_id, value, value_json FROM history "
            f"WHERE run_key = ? AND key_id IN ({marks}) ORDER BY step",
            [run_key, *ids],
        )
        yield from _group_by_step(cur, ids, require=len(ids))
        return
    names = dict(conn.execute("SELECT key_id, key FROM metric_keys").fetchall())
    cur = conn.execute(
        "SELECT h.step, h.key_id, h.value, h.value_json, s.runtime, s.timestamp "
        "FROM history h LEFT JOIN steps s ON s.run_key = h.run_key AND s.step = h.step "
        "WHERE h.run_key = ? ORDER BY h.step",
        (run_key,),
    )
    yield from _group_by_step(cur, names, require=0)


def _group_by_step(
    cur: sqlite3.Cursor, names: dict[int, str], require: int
) -> Iterator[dict[str, Any]]:
    row_out: dict[str, Any] = {}  # empty until the first step
    current = None
    for step, key_id, value, value_json, *times in cur:
        if step != current:
            if row_out and len(row_out) - 1 >= require:
                yield row_out
            current = step
            row_out = {"_step": step}
            if times:
                row_out["_runtime"], row_out["_timestamp"] = times
        row_out[names[key_id]] = value if value_json is None else json.loads(value_json)
    if row_out and len(row_out) - 1 >= require:
        yield row_out
