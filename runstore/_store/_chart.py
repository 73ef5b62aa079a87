"""Chart data: the points of one metric in a step range, downsampled with M4.

M4 keeps the first, min, max and last point of each bucket (a pixel column), so
spikes survive; never every k-th point. Three paths, by the number of finite
points in the requested range (counted from `history_blocks`):

- at most `max_points`: the exact points;
- at most `RAW_M4_LIMIT`: M4 over the raw points, one bucket per pixel column
  (a few index probes per bucket, tens of milliseconds);
- more: M4 over the per-block summaries: blocks merged k to a bucket so there
  are at most `max_points // 4` buckets; only the two edge blocks cut by the
  range are read raw. A 1M-point metric costs ~1,000 block rows.
  When the blocks are coarser than asked (a 200k-step range has 196 blocks, 784
  points, where 4,000 were asked) and the range holds at most `REFINE_LIMIT`
  points, M4 runs over the raw points instead, one bucket per requested column:
  the resolution asked for, at the cost of the raw path. Past `REFINE_LIMIT` the
  blocks are at least `REFINE_LIMIT // BLOCK` buckets, half the default 4,000
  points' 1,000 buckets. Either way each bucket keeps its min and max, so a spike
  never disappears.

Asked for them (`times=True`), the points also carry their steps' wall-clock time
and runtime from `steps` (wandb's `_timestamp` and `_runtime`), so a chart can put
time on its x axis: one primary-key probe per returned point (`step_times`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._blocks import _MAX_FLOAT, BLOCK, _combine, metric_blocks
from ._read import find_key_id

# `abs(value) <= _MAX_FLOAT` (the largest finite double) keeps finite numbers and
# drops +/-inf, which JSON cannot carry (NaN is already stored as NULL or JSON).
_POINTS = (
    "FROM history WHERE run_key = ? AND key_id = ? AND step BETWEEN ? AND ?"
    " AND value IS NOT NULL AND abs(value) <= ?"
)
# The wall-clock time and runtime of a list of steps, passed as one JSON array.
_STEP_TIMES = (
    "SELECT step, timestamp, runtime FROM steps"
    " WHERE run_key = ? AND step IN (SELECT value FROM json_each(?))"
)
_INT64 = (-(2**63), 2**63 - 1)
DEFAULT_MAX_POINTS = 4000
# Above this many points in range, buckets come from history_blocks (128 blocks).
RAW_M4_LIMIT = 128 * BLOCK
# Blocks coarser than the buckets asked for: raw M4 up to this many points in range.
REFINE_LIMIT = 512 * BLOCK

# A bucket's summary, in history_blocks' column order:
# [n, first_step, first_value, last_step, last_value, min_step, min_value, max_step, max_value]
Stats = list


def metric_points(
    conn: sqlite3.Connection,
    run_key: int,
    key: str,
    *,
    min_step: int | None = None,
    max_step: int | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    times: bool = False,
    archived: bool = False,
) -> dict[str, Any]:
    """The numeric points of one metric of one run, in step order.

    With `archived`, the points the run's newest rewind that is not undone took out of
    the live history instead (`archived_points`), for a chart to draw them faintly.

    Non-numeric and non-finite values are left out. More than `max_points` points
    in the range are downsampled with M4 into `max_points // 4` buckets. Returns
    `key`, `steps`, `values`, `total` (points in range) and `downsampled`; with
    `times`, also `timestamps` and `runtimes` (of each point's step: unix seconds and
    seconds since the run started; None for a step without a `steps` row).
    """
    result: dict[str, Any] = {
        "key": key, "steps": [], "values": [], "total": 0, "downsampled": False,
    }
    if archived:
        return archived_points(conn, run_key, key, max_points=max_points)
    if times:
        result.update(timestamps=[], runtimes=[])
    key_id = find_key_id(conn, key)
    lo = _INT64[0] if min_step is None else min_step
    hi = _INT64[1] if max_step is None else max_step
    if key_id is None or lo > hi:
        return result
    total, lo, hi, blocks = _in_range(conn, run_key, key_id, lo, hi)
    if not total:
        return result
    result["total"] = total
    max_points = max(int(max_points), 8)
    buckets = max_points // 4
    if total <= max_points:
        points = conn.execute(
            "SELECT step, value " + _POINTS + " ORDER BY step",
            (run_key, key_id, lo, hi, _MAX_FLOAT),
        ).fetchall()
    elif total <= RAW_M4_LIMIT or blocks is None or (
            max(blocks) - min(blocks) + 1 < buckets and total <= REFINE_LIMIT):
        width = -(-(hi - lo + 1) // buckets)  # ceiling division
        points = _m4_points(raw_buckets(conn, run_key, key_id, lo, hi, origin=lo, width=width))
    else:
        first, last = min(blocks), max(blocks)
        per_bucket = -(-(last - first + 1) // buckets)
        points = _m4_points(merge_blocks(blocks, first, per_bucket))
    result["downsampled"] = total > max_points
    result["steps"] = [p[0] for p in points]
    result["values"] = [p[1] for p in points]
    if times:
        result["timestamps"], result["runtimes"] = step_times(conn, run_key, result["steps"])
    return result


def archived_points(
    conn: sqlite3.Connection, run_key: int, key: str, *, max_points: int = DEFAULT_MAX_POINTS,
) -> dict[str, Any]:
    """The finite points of `key` that the run's newest not-undone rewind archived, in
    step order, M4-downsampled past `max_points`: `key`, `steps`, `values`, `total`,
    `downsampled` and `rewind_step` (the step rewound to; None with no such rewind)."""
    result: dict[str, Any] = {"key": key, "steps": [], "values": [], "total": 0,
                              "downsampled": False, "rewind_step": None}
    event = conn.execute(
        "SELECT event_id, step FROM run_events WHERE run_key = ? AND relation = 'rewind'"
        " AND undone_at IS NULL ORDER BY event_id DESC LIMIT 1", (run_key,)).fetchone()
    key_id = find_key_id(conn, key)
    if event is None:
        return result
    result["rewind_step"] = event[1]
    if key_id is None:
        return result
    rows = conn.execute(
        "SELECT step, value FROM history_archive WHERE event_id = ? AND key_id = ?"
        " AND value IS NOT NULL AND abs(value) <= ? ORDER BY step",
        (event[0], key_id, _MAX_FLOAT)).fetchall()
    result["total"] = len(rows)
    max_points = max(int(max_points), 8)
    if len(rows) > max_points:
        rows = _m4_points(raw_m4(rows, max_points // 4))
        result["downsampled"] = True
    result["steps"] = [p[0] for p in rows]
    result["values"] = [p[1] for p in rows]
    return result


def step_times(
    conn: sqlite3.Connection, run_key: int, steps: list[int]
) -> tuple[list[float | None], list[float | None]]:
    """(timestamps, runtimes) of `steps` of a run, in the order given; None for a
    step that has no `steps` row."""
    if not steps:
        return [], []
    found = {
        step: (timestamp, runtime)
        for step, timestamp, runtime in conn.execute(
            _STEP_TIMES, (run_key, json.dumps(steps))
        )
    }
    missing = (None, None)
    pairs = [found.get(step, missing) for step in steps]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _in_range(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int
) -> tuple[int, int, int, dict[int, Stats] | None]:
    """(points, first step, last step, block summaries) of the finite points in lo..hi.
    A store from before history_blocks that nobody has upgraded yet (Datasette opens
    files as they are) is counted from the raw points, with None for the blocks."""
    try:
        blocks = block_stats(conn, run_key, key_id, lo, hi)
    except sqlite3.OperationalError as error:
        if "history_blocks" not in str(error):
            raise
        first, last, total = conn.execute(
            "SELECT min(step), max(step), count(*) " + _POINTS,
            (run_key, key_id, lo, hi, _MAX_FLOAT),
        ).fetchone()
        return total, first, last, None
    if not blocks:
        return 0, lo, hi, blocks
    total = sum(stats[0] for stats in blocks.values())
    return total, blocks[min(blocks)][1], blocks[max(blocks)][3], blocks


def m4_buckets(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int, *,
    origin: int, width: int, from_blocks: bool,
) -> dict[int, Stats]:
    """M4 summaries of the points in lo..hi, bucket `(step - origin) // width`,
    from the block table or from the raw points (the two must agree). With
    `from_blocks`, `origin` and `width` must be whole blocks."""
    if not from_blocks:
        return raw_buckets(conn, run_key, key_id, lo, hi, origin=origin, width=width)
    if origin % BLOCK or width % BLOCK or width <= 0:
        raise ValueError(f"origin and width must be multiples of {BLOCK}")
    blocks = block_stats(conn, run_key, key_id, lo, hi)
    return merge_blocks(blocks, origin // BLOCK, width // BLOCK)


def block_stats(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int
) -> dict[int, Stats]:
    """Block -> summary of its finite points within lo..hi: stored block rows, except
    the (at most two) edge blocks the range cuts, which are summarised from raw points."""
    out: dict[int, Stats] = {}
    for block, *stats in metric_blocks(conn, run_key, key_id, lo, hi):
        if stats[1] >= lo and stats[3] <= hi:
            out[block] = stats
            continue
        start, end = max(lo, block * BLOCK), min(hi, block * BLOCK + BLOCK - 1)
        rows = conn.execute(
            "SELECT step, value " + _POINTS + " ORDER BY step",
            (run_key, key_id, start, end, _MAX_FLOAT),
        ).fetchall()
        if rows:
            low = min(rows, key=lambda p: p[1])
            high = max(rows, key=lambda p: p[1])
            out[block] = [len(rows), *rows[0], *rows[-1], *low, *high]
    return out


def merge_blocks(blocks: dict[int, Stats], first_block: int, per_bucket: int) -> dict[int, Stats]:
    """Block summaries merged `per_bucket` adjacent blocks to a bucket, counted from
    `first_block`."""
    out: dict[int, Stats] = {}
    for block in sorted(blocks):
        bucket = (block - first_block) // per_bucket
        stats = blocks[block]
        out[bucket] = _combine(out[bucket], stats) if bucket in out else list(stats)
    return out


def raw_buckets(
    conn: sqlite3.Connection, run_key: int, key_id: int, lo: int, hi: int, *,
    origin: int, width: int,
) -> dict[int, Stats]:
    """M4 summaries of the raw finite points in lo..hi, bucket `(step - origin) // width`;
    four index probes per non-empty bucket."""
    first_sql = "SELECT step, value " + _POINTS + " ORDER BY step LIMIT 1"
    last_sql = "SELECT step, value " + _POINTS + " ORDER BY step DESC LIMIT 1"
    # With exactly one min() or max(), SQLite takes the bare column `step` from
    # the row holding that extreme.
    min_sql = "SELECT count(*), step, min(value) " + _POINTS
    max_sql = "SELECT step, max(value) " + _POINTS
    out: dict[int, Stats] = {}
    start = lo
    while start <= hi:
        # Jump straight to the bucket holding the next point: sparse ranges cost
        # one query per non-empty bucket, not one per bucket.
        first = conn.execute(first_sql, (run_key, key_id, start, hi, _MAX_FLOAT)).fetchone()
        if first is None:
            break
        bucket = (first[0] - origin) // width
        end = min(origin + (bucket + 1) * width - 1, hi)
        params = (run_key, key_id, first[0], end, _MAX_FLOAT)
        n, *low = conn.execute(min_sql, params).fetchone()
        high = conn.execute(max_sql, params).fetchone()
        last = conn.execute(last_sql, params).fetchone()
        out[bucket] = [n, *first, *last, *low, *high]
        start = end + 1
    return out


def raw_m4(rows: list[tuple[int, float]], buckets: int) -> dict[int, Stats]:
    """M4 summaries of points (step, value) in step order, `buckets` equal step ranges."""
    lo, hi = rows[0][0], rows[-1][0]
    width = -(-(hi - lo + 1) // buckets)
    out: dict[int, Stats] = {}
    for step, value in rows:
        bucket = (step - lo) // width
        stats = out.get(bucket)
        if stats is None:
            out[bucket] = [1, step, value, step, value, step, value, step, value]
            continue
        stats[0] += 1
        stats[3], stats[4] = step, value
        if value < stats[6]:
            stats[5], stats[6] = step, value
        if value > stats[8]:
            stats[7], stats[8] = step, value
    return out


def _m4_points(buckets: dict[int, Stats]) -> list[tuple[int, float]]:
    """The distinct first/min/max/last points of each bucket, in step order."""
    out: list[tuple[int, float]] = []
    add = out.append
    for bucket in sorted(buckets):
        _, fs, fv, ls, lv, mins, minv, maxs, maxv = buckets[bucket]
        # first <= min, max <= last by step: only the middle two need ordering, and a
        # point met twice (the min is the first point, ...) is drawn once, as its
        # first occurrence (a later one at the same step would carry the same value).
        if maxs < mins:
            mins, minv, maxs, maxv = maxs, maxv, mins, minv
        add((fs, fv))
        if fs < mins < ls:
            add((mins, minv))
        if fs < maxs < ls and maxs != mins:
            add((maxs, maxv))
        if ls != fs:
            add((ls, lv))
    return out
