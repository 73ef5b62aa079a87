"""Per-block summaries of numeric history (first, last, min, max of each 1024 steps).

Charts of long runs are drawn from these (the M4 method) instead of every point.
The writer folds each batch into the blocks it touches; rewind, fork and sync
rebuild the blocks from the first step they changed.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

BLOCK = 1024
_MAX_FLOAT = 1.7976931348623157e308
_MIN_FLOAT = -_MAX_FLOAT
_FINITE = f"value BETWEEN {_MIN_FLOAT!r} AND {_MAX_FLOAT!r}"
_COLUMNS = ("n", "first_step", "first_value", "last_step", "last_value",
            "min_step", "min_value", "max_step", "max_value")


def _stats(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int
) -> dict[int, list]:
    """Block -> [n, first_step, first_value, last_step, last_value, min_step, min_value,
    max_step, max_value] over the finite points with lo <= step <= hi."""
    # SQLite returns the bare column `step`/`value` from the row that the min()/max()
    # picked: four range scans of just these points.
    base = (f"FROM history WHERE run_key = ? AND key_id = ? AND step BETWEEN ? AND ?"
            f" AND {_FINITE} GROUP BY step / {BLOCK}")
    args = (run_key, key_id, lo, hi)
    out: dict[int, list] = {}
    for block, n, step, value in conn.execute(
            f"SELECT step / {BLOCK}, count(*), min(step), value {base}", args):
        out[block] = [n, step, value, None, None, None, None, None, None]
    for block, step, value in conn.execute(f"SELECT step / {BLOCK}, max(step), value {base}",
                                           args):
        out[block][3:5] = step, value
    for block, value, step in conn.execute(f"SELECT step / {BLOCK}, min(value), step {base}",
                                           args):
        out[block][5:7] = step, value
    for block, value, step in conn.execute(f"SELECT step / {BLOCK}, max(value), step {base}",
                                           args):
        out[block][7:9] = step, value
    return out


def _combine(old: list, new: list) -> list:
    n, fs, fv, ls, lv, mins, minv, maxs, maxv = old
    first = (fs, fv) if fs <= new[1] else (new[1], new[2])
    last = (ls, lv) if ls > new[3] else (new[3], new[4])
    low = (mins, minv) if minv <= new[6] else (new[5], new[6])
    high = (maxs, maxv) if maxv >= new[8] else (new[7], new[8])
    return [n + new[0], *first, *last, *low, *high]


def _store_blocks(conn: sqlite3.Connection, run_key: int, key_id: int,
                  blocks: dict[int, list]) -> None:
    conn.executemany(
        f"INSERT OR REPLACE INTO history_blocks (run_key, key_id, block, {', '.join(_COLUMNS)})"
        f" VALUES (?, ?, ?, {', '.join('?' * len(_COLUMNS))})",
        [(run_key, key_id, block, *stats) for block, stats in blocks.items()],
    )


def _series_blocks(steps: Sequence[int], values: Sequence[float]) -> dict[int, list]:
    """Block stats of one series whose steps ascend, with C-level min/max per block."""
    out: dict[int, list] = {}
    start = 0
    while start < len(steps):
        block = steps[start] // BLOCK
        end = bisect.bisect_left(steps, (block + 1) * BLOCK, start)
        vals = values[start:end]
        low, high = min(vals), max(vals)
        out[block] = [end - start, steps[start], vals[0], steps[end - 1], vals[-1],
                      steps[start + vals.index(low)], low,
                      steps[start + vals.index(high)], high]
        start = end
    return out


Series = Mapping[tuple[int, int], tuple[Sequence[int], Sequence[float]]]


def series_of(points: Iterable[tuple]) -> Series:
    """Points (run_key, key_id, step, value, value_json) as fold_series takes them."""
    series: dict[tuple[int, int], tuple[list, list]] = {}
    for run_key, key_id, step, value, _ in points:
        if value is not None:
            columns = series.get((run_key, key_id))
            if columns is None:
                columns = series[(run_key, key_id)] = ([], [])
            columns[0].append(step)
            columns[1].append(value)
    return series


def fold_series(conn: sqlite3.Connection, series: Series) -> None:
    """Fold newly written points into their blocks, given per series (run_key, key_id)
    as (steps, values) without the points whose value is NULL. The points are at hand,
    so their summaries are computed here, not re-read; each series' steps must ascend
    (the writer's do)."""
    by_series: dict[tuple[int, int], dict[int, list]] = {}
    for key, (steps, values) in series.items():
        if not values:
            continue
        if not (_MIN_FLOAT <= min(values) and max(values) <= _MAX_FLOAT):  # rare: ±inf
            finite = [(s, v) for s, v in zip(steps, values, strict=True)
                      if _MIN_FLOAT <= v <= _MAX_FLOAT]
            if not finite:
                continue
            steps, values = [s for s, _ in finite], [v for _, v in finite]
        by_series[key] = _series_blocks(steps, values)
    for (run_key, key_id), blocks in by_series.items():
        old = conn.execute(
            f"SELECT block, {', '.join(_COLUMNS)} FROM history_blocks"
            " WHERE run_key = ? AND key_id = ? AND block BETWEEN ? AND ?",
            (run_key, key_id, min(blocks), max(blocks)),
        ).fetchall()
        for block, *stats in old:
            if block in blocks:
                blocks[block] = _combine(stats, blocks[block])
        _store_blocks(conn, run_key, key_id, blocks)


def run_key_ids(conn: sqlite3.Connection, run_key: int) -> list[int]:
    """The key_ids a run has history for (one index probe per interned key)."""
    return [r[0] for r in conn.execute(
        "SELECT key_id FROM metric_keys k WHERE EXISTS "
        "(SELECT 1 FROM history h WHERE h.run_key = ? AND h.key_id = k.key_id)", (run_key,)
    )]


def rebuild_blocks(conn: sqlite3.Connection, run_key: int, from_step: int = 0) -> None:
    """Recompute a run's blocks from the one holding `from_step` onwards."""
    first_block = from_step // BLOCK
    conn.execute("DELETE FROM history_blocks WHERE run_key = ? AND block >= ?",
                 (run_key, first_block))
    for key_id in run_key_ids(conn, run_key):
        blocks = _stats(conn, run_key, key_id, first_block * BLOCK, 2**62)
        _store_blocks(conn, run_key, key_id, blocks)


def copy_blocks(conn: sqlite3.Connection, source: int, target: int, step: int) -> None:
    """A fork's blocks: the source's whole blocks up to `step`, the last one rebuilt."""
    conn.execute(
        f"INSERT INTO history_blocks (run_key, key_id, block, {', '.join(_COLUMNS)})"
        f" SELECT ?, key_id, block, {', '.join(_COLUMNS)} FROM history_blocks"
        " WHERE run_key = ? AND block < ?",
        (target, source, step // BLOCK),
    )
    rebuild_blocks(conn, target, step)


def metric_blocks(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int
) -> list[tuple]:
    """Block summaries of one metric overlapping steps lo..hi, in step order:
    (block, n, first_step, first_value, last_step, last_value, min_step, min_value,
    max_step, max_value)."""
    return conn.execute(
        f"SELECT block, {', '.join(_COLUMNS)} FROM history_blocks"
        " WHERE run_key = ? AND key_id = ? AND block BETWEEN ? AND ? ORDER BY block",
        (run_key, key_id, lo // BLOCK, hi // BLOCK),
    ).fetchall()
