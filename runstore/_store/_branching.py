"""Resume, rewind and fork in SQL: events, the archive, copies and aggregates.

Callers wrap these in one transaction together with the run-row updates, so a
crash leaves the store before or after a lifecycle change, never between.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._blocks import copy_blocks, rebuild_blocks, run_key_ids
from ._json import loads


def last_step(conn: sqlite3.Connection, run_key: int) -> int | None:
    """The highest committed step of a run, or None if it has no history."""
    return conn.execute("SELECT max(step) FROM steps WHERE run_key = ?", (run_key,)).fetchone()[0]


def step_runtime(conn: sqlite3.Connection, run_key: int, step: int) -> float | None:
    """The runtime recorded at a step at or before `step`."""
    row = conn.execute(
        "SELECT runtime FROM steps WHERE run_key = ? AND step <= ? ORDER BY step DESC LIMIT 1",
        (run_key, step),
    ).fetchone()
    return None if row is None else row[0]


def add_event(
    conn: sqlite3.Connection, run_key: int, relation: str, parent_run_key: int | None,
    step: int | None, at: str, rows_moved: int = 0,
) -> int:
    """Record a resume, rewind or fork; returns its event_id."""
    cur = conn.execute(
        "INSERT INTO run_events (run_key, relation, parent_run_key, step, at, rows_moved)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (run_key, relation, parent_run_key, step, at, rows_moved),
    )
    event_id = cur.lastrowid
    assert event_id is not None  # an INSERT sets it
    return event_id


def mark_resumed(conn: sqlite3.Connection, run_key: int) -> None:
    conn.execute("UPDATE run_records SET resume_count = resume_count + 1 WHERE run_key = ?",
                 (run_key,))


def _move_tail(conn: sqlite3.Connection, run_key: int, step: int, event_id: int) -> int:
    """Move history and steps after `step` into the archive under `event_id`."""
    ids = run_key_ids(conn, run_key)
    moved = 0
    if ids:
        # key_id IN (...) makes this one range scan per key, not a scan of the run.
        marks = ", ".join("?" * len(ids))
        where = f"run_key = ? AND key_id IN ({marks}) AND step > ?"
        moved = conn.execute(
            "INSERT INTO history_archive (event_id, run_key, key_id, step, value, value_json) "
            f"SELECT ?, run_key, key_id, step, value, value_json FROM history WHERE {where}",
            [event_id, run_key, *ids, step],
        ).rowcount
        conn.execute(f"DELETE FROM history WHERE {where}", [run_key, *ids, step])
    conn.execute(
        "INSERT INTO steps_archive (event_id, run_key, step, timestamp, runtime) "
        "SELECT ?, run_key, step, timestamp, runtime FROM steps WHERE run_key = ? AND step > ?",
        (event_id, run_key, step),
    )
    conn.execute("DELETE FROM steps WHERE run_key = ? AND step > ?", (run_key, step))
    return moved


def rewind(conn: sqlite3.Connection, run_key: int, step: int, at: str) -> int:
    """Archive everything after `step`; returns the rewind's event_id."""
    event_id = add_event(conn, run_key, "rewind", run_key, step, at)
    moved = _move_tail(conn, run_key, step, event_id)
    rebuild_blocks(conn, run_key, step)
    conn.execute("UPDATE run_events SET rows_moved = ? WHERE event_id = ?", (moved, event_id))
    return event_id


def undo_rewind(conn: sqlite3.Connection, run_key: int, at: str) -> int | None:
    """Restore the newest rewind that is not undone yet; returns its event_id or None.

    Whatever was logged after that rewind is archived in turn (as a rewind to the
    same step), so undoing loses nothing either.
    """
    row = conn.execute(
        "SELECT event_id, step FROM run_events WHERE run_key = ? AND relation = 'rewind'"
        " AND undone_at IS NULL ORDER BY event_id DESC LIMIT 1", (run_key,),
    ).fetchone()
    if row is None:
        return None
    event_id, step = row
    if (last_step(conn, run_key) or -1) > step:
        rewind(conn, run_key, step, at)
    conn.execute(
        "INSERT INTO history (run_key, key_id, step, value, value_json) SELECT run_key, key_id,"
        " step, value, value_json FROM history_archive WHERE event_id = ?", (event_id,),
    )
    conn.execute(
        "INSERT INTO steps (run_key, step, timestamp, runtime) SELECT run_key, step, timestamp,"
        " runtime FROM steps_archive WHERE event_id = ?", (event_id,),
    )
    conn.execute("DELETE FROM history_archive WHERE event_id = ?", (event_id,))
    conn.execute("DELETE FROM steps_archive WHERE event_id = ?", (event_id,))
    conn.execute("UPDATE run_events SET undone_at = ? WHERE event_id = ?", (at, event_id))
    rebuild_blocks(conn, run_key, step)
    return event_id


def copy_history(conn: sqlite3.Connection, source: int, target: int, step: int) -> int:
    """Copy a run's history and steps up to and including `step`; returns points copied."""
    ids = run_key_ids(conn, source)
    copied = 0
    if ids:
        marks = ", ".join("?" * len(ids))
        copied = conn.execute(
            "INSERT INTO history (run_key, key_id, step, value, value_json) "
            "SELECT ?, key_id, step, value, value_json FROM history "
            f"WHERE run_key = ? AND key_id IN ({marks}) AND step <= ?",
            [target, source, *ids, step],
        ).rowcount
    conn.execute(
        "INSERT INTO steps (run_key, step, timestamp, runtime) "
        "SELECT ?, step, timestamp, runtime FROM steps WHERE run_key = ? AND step <= ?",
        (target, source, step),
    )
    copy_blocks(conn, source, target, step)
    return copied


def metric_aggregates(conn: sqlite3.Connection, run_key: int) -> dict[str, dict[str, Any]]:
    """Per key of a run's live history: first, last, min, max, sum and count of numbers."""
    out: dict[str, dict[str, Any]] = {}
    # Numbers are the values without JSON (bools carry 'true'/'false' beside their 0/1).
    number = "CASE WHEN h.value_json IS NULL THEN h.value END"
    rows = conn.execute(
        f"SELECT k.key, h.key_id, min({number}), max({number}), total({number}),"
        f" count({number}) FROM history h JOIN metric_keys k ON k.key_id = h.key_id"
        " WHERE h.run_key = ? GROUP BY h.key_id", (run_key,),
    ).fetchall()
    for key, key_id, vmin, vmax, vsum, count in rows:
        ends = []
        for order in ("ASC", "DESC"):
            value, value_json = conn.execute(
                f"SELECT value, value_json FROM history WHERE run_key = ? AND key_id = ?"
                f" ORDER BY step {order} LIMIT 1", (run_key, key_id),
            ).fetchone()
            ends.append(value if value_json is None else loads(value_json))
        out[key] = {"first": ends[0], "last": ends[1], "min": vmin, "max": vmax,
                    "sum": vsum, "count": count}
    return out


def lineage(conn: sqlite3.Connection, run_key: int) -> list[dict[str, Any]]:
    """Events of a run and forks made from it, oldest first."""
    cur = conn.execute(
        "SELECT event_id, run_key, run_id, relation, parent_run_key, parent_id, step, at,"
        " rows_moved, undone_at"
        " FROM run_lineage WHERE run_key = ? OR (parent_run_key = ? AND relation = 'fork')"
        " ORDER BY event_id", (run_key, run_key),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def unrewind_run(conn: sqlite3.Connection, run_key: int) -> Any:
    """Undo the newest rewind of run `run_key` in one transaction (`undo_rewind`, then the
    summary recomputed from the history as it is now); the run row after it, or None when
    there is no such run. `Api.unrewind` (so `runstore unrewind`) and the run page's
    unrewind button both come here. Raises UsageError when the run is live or has no
    rewind to undo."""
    # The summary rules and errors live with the library (imported here: it imports us).
    from .._branch import summary_from
    from .._errors import UsageError
    from .._values import utc_now
    from ._liveness import check_not_live
    from ._read import get_run_by_key
    from ._runs import metric_definitions, update_run
    from ._schema import transaction

    with transaction(conn):
        row = get_run_by_key(conn, run_key)
        if row is None:
            return None
        check_not_live(row, "undo a rewind of")
        if undo_rewind(conn, run_key, utc_now()) is None:
            raise UsageError(f"run {row['id']!r} of project {row['entity']}/{row['project']}"
                             " has no rewind to undo")
        summary = summary_from(metric_aggregates(conn, run_key), metric_definitions(row))
        update_run(conn, run_key, {"summary": summary})
        return get_run_by_key(conn, run_key)
