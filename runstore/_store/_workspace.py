"""The workspace's chart data: several metrics of up to 100 runs in one read.

`workspace_series` answers the workspace charts (the charts panel above a runs table,
datasette_plugins/runstore_ui/static/runstore_workspace.js): per run and metric, the
points to draw, downsampled with M4 (first, min, max and last of each bucket, so spikes
survive) from the per-block summaries of `history_blocks`. All the blocks of every
requested (run, metric) come from one query, so a run of 1M points costs about what a
small one does (~1,000 block rows). Per series, by its finite points:

- at most `points`: the exact points (one range scan);
- blocks enough for a quarter of the requested resolution (a run of 100k steps has 98
  blocks: ~390 points): the blocks merged k to a bucket;
- else (a short, dense run: fewer than `points // 16` blocks, so at most
  `points * 64` points): M4 over its raw points, read in one range scan.

Series read before are kept (`_CACHE`, per process) while their block summaries are
unchanged, so a filter that brings back runs already drawn reads only a checksum of
their blocks. The x of each point is its step, its step's runtime or wall-clock time (`steps`), or
the value of another metric of the same run (metric-vs-metric: the x metric's value at
the point's step, else at the last step before it where the x metric was logged).
Points without an x value are left out.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from typing import Any

from ._blocks import _MAX_FLOAT
from ._chart import _m4_points, merge_blocks, metric_points, raw_m4, step_times
from ._json import decode_json

MAX_RUNS = 100
MAX_METRICS = 50
DEFAULT_POINTS = 400
X_STEP, X_RUNTIME, X_TIME, X_METRIC = "step", "runtime", "time", "metric"

_COLUMNS = ("n, first_step, first_value, last_step, last_value,"
            " min_step, min_value, max_step, max_value")
_RUN_INFO = (
    "SELECT run_key, name, state, project, run_group, job_type, config, summary"
    " FROM runs WHERE run_key IN (SELECT value FROM json_each(?))"
)
# The x metric's value at each step of a JSON array of steps: at that step, else at the
# last step before it where it was logged (finite values only).
_X_AT = (
    "SELECT (SELECT h.value FROM history h WHERE h.run_key = ? AND h.key_id = ?"
    " AND h.step <= j.value AND h.value IS NOT NULL AND abs(h.value) <= ?"
    " ORDER BY h.step DESC LIMIT 1) FROM json_each(?) j ORDER BY j.key"
)


def _key_ids(conn: sqlite3.Connection, keys: list[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT key, key_id FROM metric_keys WHERE key IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),),
    ).fetchall()
    return {key: key_id for key, key_id in rows}


def workspace_keys(conn: sqlite3.Connection, run_keys: list[int]) -> list[str]:
    """The numeric metric keys any of `run_keys` has logged, sorted (from the block
    summaries: one probe per interned key; from history on a store without them)."""
    for table in ("history_blocks", "history"):
        try:
            rows = conn.execute(
                f"SELECT key FROM metric_keys k WHERE EXISTS (SELECT 1 FROM {table} b"
                " WHERE b.run_key IN (SELECT value FROM json_each(?)) AND b.key_id = k.key_id)"
                " ORDER BY key", (json.dumps(run_keys),)).fetchall()
        except sqlite3.OperationalError as error:
            if "history_blocks" not in str(error):
                raise
            continue
        return [r[0] for r in rows]
    return []


def workspace_runs(conn: sqlite3.Connection, run_keys: list[int]) -> list[dict[str, Any]]:
    """Name, state, project, group, job type, config and summary (decoded) of the runs,
    in the order of `run_keys`; run_keys of no run are left out."""
    cur = conn.execute(_RUN_INFO, (json.dumps(run_keys),))
    names = [d[0] for d in cur.description]
    found: dict[int, dict[str, Any]] = {}
    for row in cur.fetchall():
        run = dict(zip(names, row, strict=True))
        for column in ("config", "summary"):
            try:
                run[column] = decode_json(run[column]) if run[column] else {}
            except ValueError:
                run[column] = {}
        found[run["run_key"]] = run
    return [found[key] for key in run_keys if key in found]


class _Drawn:
    """One series as drawn (steps, values, total, downsampled), with its JSON text kept
    once encoded (`compact`): a page of 100 runs x 6 metrics is ~100,000 points, whose
    encoding cost more than reading them from the cache."""

    __slots__ = ("steps", "values", "total", "sampled", "_steps_json", "_values_json")

    def __init__(self, steps: list, values: list, total: int, sampled: bool) -> None:
        self.steps, self.values, self.total, self.sampled = steps, values, total, sampled
        self._steps_json: JSONText | None = None
        self._values_json: JSONText | None = None

    def steps_json(self) -> JSONText:
        if self._steps_json is None:
            self._steps_json = numbers_json(self.steps, exact=True)
        return self._steps_json

    def values_json(self) -> JSONText:
        if self._values_json is None:
            self._values_json = numbers_json(self.values)
        return self._values_json


class JSONText(str):
    """A JSON array already encoded (`workspace_series(compact=True)`): splice it in."""


_G7 = "%.7g".__mod__


def _number(value: Any, exact: bool) -> str:
    if type(value) is int:
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "null"
        return repr(value) if exact else _G7(value)
    if value is None:
        return "null"
    return json.dumps(value)


def numbers_json(values: list, *, exact: bool = False) -> JSONText:
    """A list of numbers as a JSON array: floats to 7 significant digits (far below a
    pixel, and ~40 % of the text of their repr) unless `exact`, ints as they are,
    non-finite floats and None as null."""
    kinds = set(map(type, values))
    # One %-format of the whole list: about twice as fast as a join of one call a number
    if kinds <= {int}:
        text = ("%d," * len(values) % tuple(values))[:-1]
    elif kinds == {float} and not exact:
        text = ("%.7g," * len(values) % tuple(values))[:-1]
        if "n" in text:  # nan, inf: not JSON
            text = ",".join(_number(v, exact) for v in values)
    else:
        text = ",".join(_number(v, exact) for v in values)
    return JSONText("[" + text + "]")


# Series drawn before, by (database file, run_key, key_id, points, mark): a run's chart
# is read again only when its blocks changed. The mark is a checksum of the series'
# block summaries (count, extent, sums of first/last/min/max values), so new points, a
# rewind or a sync that changes them all change it.
_CACHE: OrderedDict[tuple, _Drawn] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SERIES = 4000


def _database_file(conn: sqlite3.Connection) -> str:
    """The main database's file ('' for an in-memory or temporary one: not cached)."""
    for _, name, filename in conn.execute("PRAGMA database_list"):
        if name == "main":
            return str(filename or "")
    return ""


def _marks(conn: sqlite3.Connection, run_keys: list[int], key_ids: list[int]
           ) -> dict[tuple[int, int], tuple] | None:
    """(run_key, key_id) -> a checksum of its block summaries, in one query (None on a
    store without history_blocks)."""
    try:
        rows = conn.execute(
            "SELECT run_key, key_id, count(*), sum(n), min(block), max(block),"
            " max(last_step), sum(first_value), sum(last_value), sum(min_value),"
            " sum(max_value) FROM history_blocks"
            " WHERE run_key IN (SELECT value FROM json_each(?))"
            " AND key_id IN (SELECT value FROM json_each(?)) GROUP BY run_key, key_id",
            (json.dumps(run_keys), json.dumps(key_ids))).fetchall()
    except sqlite3.OperationalError as error:
        if "history_blocks" not in str(error):
            raise
        return None
    return {(row[0], row[1]): tuple(row[2:]) for row in rows}


def _remember(key: tuple, value: _Drawn) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = value
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SERIES:
            _CACHE.popitem(last=False)


def _blocks(conn: sqlite3.Connection, run_keys: list[int], key_ids: list[int]
            ) -> dict[tuple[int, int], dict[int, list]] | None:
    """(run_key, key_id) -> block -> summary, in one query; None on a store without
    history_blocks."""
    try:
        cur = conn.execute(
            f"SELECT run_key, key_id, block, {_COLUMNS} FROM history_blocks"
            " WHERE run_key IN (SELECT value FROM json_each(?))"
            " AND key_id IN (SELECT value FROM json_each(?))",
            (json.dumps(run_keys), json.dumps(key_ids)))
    except sqlite3.OperationalError as error:
        if "history_blocks" not in str(error):
            raise
        return None
    out: dict[tuple[int, int], dict[int, list]] = {}
    for run_key, key_id, block, *stats in cur:
        out.setdefault((run_key, key_id), {})[block] = stats
    return out


def _series(conn: sqlite3.Connection, run_key: int, key: str, key_id: int,
            blocks: dict[int, list] | None, points: int) -> tuple[list, list, int, bool]:
    """(steps, values, total, downsampled) of one metric of one run."""
    buckets = max(points // 4, 2)
    if blocks is None:
        data = metric_points(conn, run_key, key, max_points=points)
        return data["steps"], data["values"], data["total"], data["downsampled"]
    if not blocks:
        return [], [], 0, False
    total = sum(stats[0] for stats in blocks.values())
    first, last = min(blocks), max(blocks)
    span = last - first + 1
    if total <= points:
        rows = conn.execute(
            "SELECT step, value FROM history WHERE run_key = ? AND key_id = ?"
            " AND value IS NOT NULL AND abs(value) <= ? ORDER BY step",
            (run_key, key_id, _MAX_FLOAT)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows], total, False
    if span * 4 >= buckets:
        per_bucket = -(-span // buckets)
        pairs = _m4_points(merge_blocks(blocks, first, per_bucket))
        return [p[0] for p in pairs], [p[1] for p in pairs], total, True
    rows = conn.execute(
        "SELECT step, value FROM history WHERE run_key = ? AND key_id = ?"
        " AND value IS NOT NULL AND abs(value) <= ? ORDER BY step",
        (run_key, key_id, _MAX_FLOAT)).fetchall()
    pairs = _m4_points(raw_m4(rows, buckets))
    return [p[0] for p in pairs], [p[1] for p in pairs], total, True




def _x_values(conn: sqlite3.Connection, run_key: int, steps: list[int], x: str,
              x_key_id: int | None) -> list[Any]:
    if x == X_STEP:
        return list(steps)
    if x in (X_RUNTIME, X_TIME):
        timestamps, runtimes = step_times(conn, run_key, steps)
        return runtimes if x == X_RUNTIME else timestamps
    if x_key_id is None or not steps:
        return [None] * len(steps)
    return [r[0] for r in conn.execute(
        _X_AT, (run_key, x_key_id, _MAX_FLOAT, json.dumps(steps)))]


def workspace_series(
    conn: sqlite3.Connection,
    run_keys: list[int],
    metrics: list[str],
    *,
    points: int = DEFAULT_POINTS,
    x: str = X_STEP,
    x_metric: str | None = None,
    compact: bool = False,
) -> dict[str, Any]:
    """Chart data of `metrics` of `run_keys` (at most `MAX_RUNS` runs and `MAX_METRICS`
    metrics, else ValueError).

    `x` is "step", "runtime", "time" or "metric" (then `x_metric` names the metric
    the others are drawn against). Returns {"runs": [run info (`workspace_runs`)],
    "series": [{"run_key", "key", "x", "y", "steps", "total", "downsampled"}]} with
    `x`, `y` and `steps` aligned and in step order (no `steps` when x is the step); a
    run without a metric has no entry for it. With `compact`, `x`, `y` and `steps` are
    `JSONText` (the arrays' JSON, y to 7 significant digits, kept with the cached series
    so a page drawn again encodes nothing).
    """
    if len(run_keys) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs at once (got {len(run_keys)})")
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics at once (got {len(metrics)})")
    if x not in (X_STEP, X_RUNTIME, X_TIME, X_METRIC):
        raise ValueError("x must be step, runtime, time or metric")
    if x == X_METRIC and not x_metric:
        raise ValueError("an x metric is needed to draw metrics against one")
    points = max(8, int(points))
    runs = workspace_runs(conn, run_keys)
    keys = [r["run_key"] for r in runs]
    ids = _key_ids(conn, [*metrics, *([x_metric] if x_metric else [])])
    x_key_id = ids.get(x_metric) if x_metric else None
    wanted = [(key, ids[key]) for key in dict.fromkeys(metrics) if key in ids]
    key_ids = [key_id for _, key_id in wanted]
    marks = _marks(conn, keys, key_ids) if keys and wanted else {}
    where = _database_file(conn)
    cached: dict[tuple[int, int], _Drawn] = {}
    if marks is not None and where:
        with _CACHE_LOCK:
            for (run_key, key_id), mark in marks.items():
                hit = _CACHE.get((where, run_key, key_id, points, mark))
                if hit is not None:
                    cached[(run_key, key_id)] = hit
    todo = sorted({run_key for run_key, key_id in marks or {}
                   if (run_key, key_id) not in cached})
    if marks is None:
        blocks = None
    else:
        blocks = _blocks(conn, todo, key_ids) if todo else {}
    series = []
    for run_key in keys:
        for key, key_id in wanted:
            drawn = cached.get((run_key, key_id))
            if drawn is None:
                found = None if blocks is None else blocks.get((run_key, key_id), {})
                drawn = _Drawn(*_series(conn, run_key, key, key_id, found, points))
                current = None if marks is None else marks.get((run_key, key_id))
                if drawn.total and current is not None and where:
                    _remember((where, run_key, key_id, points, current), drawn)
            if not drawn.total:
                continue
            entry: dict[str, Any] = {"run_key": run_key, "key": key}
            if x == X_STEP:  # no steps: the same as x
                entry["x"] = drawn.steps_json() if compact else drawn.steps
                entry["y"] = drawn.values_json() if compact else drawn.values
            else:
                steps, values = drawn.steps, drawn.values
                xs = _x_values(conn, run_key, steps, x, x_key_id)
                kept = [i for i, v in enumerate(xs) if v is not None]
                if len(kept) < len(xs):
                    steps, values, xs = ([seq[i] for i in kept] for seq in (steps, values, xs))
                    entry["x"], entry["y"], entry["steps"] = xs, values, steps
                    if compact:
                        entry["y"] = numbers_json(values)
                else:
                    entry["x"], entry["y"], entry["steps"] = xs, values, steps
                    if compact:
                        entry["y"] = drawn.values_json()
                if compact:
                    entry["x"] = numbers_json(xs, exact=True)
                    entry["steps"] = numbers_json(steps, exact=True)
            entry["total"], entry["downsampled"] = drawn.total, drawn.sampled
            series.append(entry)
    return {"runs": runs, "series": series}
