"""Writes of metric history: key interning and batched step/point inserts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from ._blocks import Series, fold_series, series_of


def intern_keys(conn: sqlite3.Connection, keys: Iterable[str], cache: dict[str, int]) -> None:
    """Make sure every key has a key_id, filling `cache` (key -> key_id)."""
    missing = [k for k in keys if k not in cache]
    if not missing:
        return
    conn.executemany(
        "INSERT OR IGNORE INTO metric_keys (key) VALUES (?)", [(k,) for k in missing]
    )
    for key in missing:
        row = conn.execute("SELECT key_id FROM metric_keys WHERE key = ?", (key,)).fetchone()
        cache[key] = int(row[0])


def insert_points(
    conn: sqlite3.Connection,
    steps: list[tuple[int, int, float, float]],
    points: Iterable[tuple[int, int, int, float | None, str | None]],
    series: Series | None = None,
) -> None:
    """Insert step rows (run_key, step, timestamp, runtime) and points
    (run_key, key_id, step, value, value_json), and fold the points into the
    per-block summaries. A step written again replaces the earlier value.

    With `series` (the points as fold_series takes them), `points` may be an iterator:
    a point made only as SQLite binds it is freed (and its memory reused) at once."""
    if steps:
        conn.executemany(
            "INSERT OR REPLACE INTO steps (run_key, step, timestamp, runtime) VALUES (?, ?, ?, ?)",
            steps,
        )
    if series is None:
        points = list(points)
        series = series_of(points)
    conn.executemany(
        "INSERT OR REPLACE INTO history (run_key, key_id, step, value, value_json)"
        " VALUES (?, ?, ?, ?, ?)",
        points,
    )
    if series:
        fold_series(conn, series)
