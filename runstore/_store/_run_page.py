"""Reads for the run page and its routes (the Datasette plugin's; chart data: `_chart`).

- the page in one trip: the run row, lineage, fork parent, chart keys, step count, the
  files kept with the run and the artifact versions it logged and used (`run_page`), and
  what a live page polls (`run_status`); whether a database is a store at all
  (`is_runstore`);
- the run's output beyond metrics (its writes: `_run_output`), first page in one trip
  (`run_output`):
  - console: pages of a run's stdout/stderr lines in `seq` order (`console_page`);
  - system metrics: one time series per `system/...` key, time-bucketed M4 when long
    (`system_series`);
  - media: history rows whose `value_json` is a description with a `_type`
    (image-file, video-file, histogram, table, ...): which keys hold them, the steps of
    each (bounded, for a slider) and the description at one step (`media_keys`,
    `media_items`, `media_at`);
  - blobs: the bytes of a blob that some run of the store references in `run_files`, or
    a file of an artifact version kept inside the store (`referenced_blob`, `blob_range`).

A key is a media key when its newest row is a media description; such keys are not
drawn as line charts (`chart_keys`).
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from ._artifacts import run_artifacts
from ._branching import last_step, lineage
from ._read import find_key_id, get_run_by_key

# Media descriptions are written by json.dumps with "_type" first.
_MEDIA_PREFIX = '{"_type": "'
_MEDIA_LIKE = _MEDIA_PREFIX.replace("_", r"\_") + "%"
MAX_MEDIA_STEPS = 1000
DEFAULT_CONSOLE_LIMIT = 500
MAX_CONSOLE_LIMIT = 5000
DEFAULT_SYSTEM_POINTS = 2000
_INT64_MAX = 2**63 - 1


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
    (steps,) = conn.execute(
        "SELECT count(*) FROM steps WHERE run_key = ?", (run_key,)
    ).fetchone()
    return {"run": run, "metric_keys": chart_keys(conn, run_key),
            "last_step": last_step(conn, run_key), "step_count": steps}


def run_page(conn: sqlite3.Connection, run_key: int) -> dict[str, Any] | None:
    """Everything the run page needs in one trip: the run row, its lineage and fork
    parent, its metric keys and step statistics; None if there is no such run."""
    status = run_status(conn, run_key)
    if status is None:
        return None
    parent = status["run"].get("parent_run_key")
    return {
        **status,
        "lineage": lineage(conn, run_key),
        "parent": get_run_by_key(conn, parent) if parent is not None else None,
        "files": _run_file_list(conn, run_key),
        "artifacts": run_artifacts(conn, run_key),
        # A failed or crashed run shows its error at the top of its page.
        "stderr_tail": stderr_tail(conn, run_key)
        if status["run"].get("state") in ("failed", "crashed") else [],
    }


def stderr_tail(conn: sqlite3.Connection, run_key: int, limit: int = 15) -> list[str]:
    """The last `limit` stderr lines of a run, oldest first (the traceback of a failed
    run ends there)."""
    if "console_lines" not in has_tables(conn):
        return []
    rows = conn.execute(
        "SELECT line FROM console_lines WHERE run_key = ? AND stream = 'stderr'"
        " ORDER BY seq DESC LIMIT ?", (run_key, limit)).fetchall()
    return [line for (line,) in reversed(rows)]


def _run_file_list(conn: sqlite3.Connection, run_key: int) -> list[dict[str, Any]]:
    """The files kept with a run (saved code, wandb.save, TensorBoard event files), without
    the media its history shows: {path, kind, size, sha256}, by path."""
    if not {"blobs", "run_files"} <= has_tables(conn):
        return []
    return [{"path": path, "kind": kind, "size": size, "sha256": sha256}
            for path, kind, size, sha256 in conn.execute(
                "SELECT f.path, f.kind, b.size, f.sha256 FROM run_files f JOIN blobs b"
                " ON b.sha256 = f.sha256 WHERE f.run_key = ? AND f.kind != 'media'"
                " ORDER BY f.path", (run_key,))]


def has_tables(conn: sqlite3.Connection) -> set[str]:
    """Which of the tables these reads use the store has (older stores lack some)."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN"
        " ('console_lines', 'system_metrics', 'blobs', 'run_files')").fetchall()
    return {name for (name,) in rows}


def _media_type(value_json: str | None) -> str | None:
    if not value_json or not value_json.startswith(_MEDIA_PREFIX):
        return None
    try:
        obj = json.loads(value_json)
    except ValueError:
        return None
    kind = obj.get("_type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) else None


def _newest_rows(conn: sqlite3.Connection, run_key: int) -> list[tuple[str, int, str | None]]:
    """(key, key_id, newest value_json) for every key the run has history for, sorted."""
    return conn.execute(
        "SELECT k.key, k.key_id, (SELECT h.value_json FROM history h WHERE h.run_key = ?"
        "  AND h.key_id = k.key_id ORDER BY h.step DESC LIMIT 1) AS newest"
        " FROM metric_keys k WHERE EXISTS"
        " (SELECT 1 FROM history h WHERE h.run_key = ? AND h.key_id = k.key_id)"
        " ORDER BY k.key",
        (run_key, run_key),
    ).fetchall()


def media_keys(conn: sqlite3.Connection, run_key: int) -> dict[str, str]:
    """{key: _type} for the run's keys whose newest row is a media description."""
    kinds = ((key, _media_type(newest)) for key, _, newest in _newest_rows(conn, run_key))
    return {key: kind for key, kind in kinds if kind is not None}


def chart_keys(conn: sqlite3.Connection, run_key: int) -> list[str]:
    """The run's metric keys that are not media keys (the ones drawn as line charts)."""
    return [key for key, _, newest in _newest_rows(conn, run_key)
            if _media_type(newest) is None]


def _sample(steps: list[int], limit: int) -> list[int]:
    """At most `limit` of `steps`, evenly spread, the first and last kept."""
    if len(steps) <= limit:
        return steps
    if limit < 2:
        return steps[-1:]
    span = len(steps) - 1
    picks = sorted({round(i * span / (limit - 1)) for i in range(limit)})
    return [steps[i] for i in picks]


def _description(step: int, value_json: str) -> dict[str, Any]:
    try:
        obj = json.loads(value_json)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        obj = {"_type": None}
    return {**obj, "step": step}


def media_items(conn: sqlite3.Connection, run_key: int,
                max_steps: int = MAX_MEDIA_STEPS) -> list[dict[str, Any]]:
    """Per media key of the run (sorted): {key, type, count, steps, latest}.

    `steps` are the steps the key was logged at (at most `max_steps`, evenly spread,
    first and last kept); `count` is how many there are;
    `latest` is the newest description with its `step`."""
    items = []
    for key, key_id, value_json in _newest_rows(conn, run_key):
        kind = _media_type(value_json)
        if kind is None or value_json is None:
            continue
        # Every step of the key (its rows are media: its newest is), without reading
        # their descriptions; the slider asks media_at() for the one it shows.
        steps = [s for (s,) in conn.execute(
            "SELECT step FROM history WHERE run_key = ? AND key_id = ? ORDER BY step",
            (run_key, key_id))]
        items.append({"key": key, "type": kind, "count": len(steps),
                      "steps": _sample(steps, max_steps),
                      "latest": _description(steps[-1], value_json)})
    return items


def media_at(conn: sqlite3.Connection, run_key: int, key: str,
             step: int | None = None) -> dict[str, Any] | None:
    """The media description of `key` at `step` (the newest at or before it; the
    newest of all without a step), with its `step`; None if there is none."""
    key_id = find_key_id(conn, key)
    if key_id is None:
        return None
    step = _INT64_MAX if step is None else step
    row = conn.execute(
        "SELECT step, value_json FROM history WHERE run_key = ? AND key_id = ? AND step <= ?"
        " AND value_json LIKE ? ESCAPE '\\' ORDER BY step DESC LIMIT 1",
        (run_key, key_id, step, _MEDIA_LIKE)).fetchone()
    return None if row is None else _description(row[0], row[1])


def console_page(conn: sqlite3.Connection, run_key: int, after: int = -1,
                 limit: int = DEFAULT_CONSOLE_LIMIT) -> dict[str, Any]:
    """Console lines with seq > `after`, at most `limit`: {lines: [{seq, stream, at,
    line}], total (lines of the run), remaining (after this page), last_seq}."""
    limit = max(1, min(int(limit), MAX_CONSOLE_LIMIT))
    if "console_lines" not in has_tables(conn):
        return {"lines": [], "total": 0, "remaining": 0, "last_seq": after}
    rows = conn.execute(
        "SELECT seq, stream, at, line FROM console_lines WHERE run_key = ? AND seq > ?"
        " ORDER BY seq LIMIT ?", (run_key, after, limit)).fetchall()
    (total,) = conn.execute("SELECT count(*) FROM console_lines WHERE run_key = ?",
                            (run_key,)).fetchone()
    last = rows[-1][0] if rows else after
    (remaining,) = conn.execute(
        "SELECT count(*) FROM console_lines WHERE run_key = ? AND seq > ?",
        (run_key, last)).fetchone()
    return {
        "lines": [{"seq": seq, "stream": stream, "at": at, "line": line}
                  for seq, stream, at, line in rows],
        "total": total, "remaining": remaining, "last_seq": last,
    }


def system_keys(conn: sqlite3.Connection, run_key: int) -> list[str]:
    """The system metric keys the run has samples of, sorted."""
    if "system_metrics" not in has_tables(conn):
        return []
    rows = conn.execute(
        "SELECT key FROM metric_keys k WHERE EXISTS "
        "(SELECT 1 FROM system_metrics s WHERE s.run_key = ? AND s.key_id = k.key_id)"
        " ORDER BY key", (run_key,)).fetchall()
    return [key for (key,) in rows]


def _m4(ats: list[float], values: list[float], buckets: int) -> tuple[list, list]:
    """First, min, max and last sample of each of `buckets` equal time buckets."""
    lo, hi = ats[0], ats[-1]
    width = (hi - lo) / buckets or 1.0
    out_at: list[float] = []
    out_v: list[float] = []
    start = 0
    n = len(ats)
    while start < n:
        bucket = min(int((ats[start] - lo) / width), buckets - 1)
        end = start
        while end < n and min(int((ats[end] - lo) / width), buckets - 1) == bucket:
            end += 1
        picks = {start, end - 1}
        finite = [i for i in range(start, end) if values[i] is not None]
        if finite:
            picks.add(min(finite, key=lambda i: values[i]))
            picks.add(max(finite, key=lambda i: values[i]))
        for i in sorted(picks):
            out_at.append(ats[i])
            out_v.append(values[i])
        start = end
    return out_at, out_v


def system_series(conn: sqlite3.Connection, run_key: int, after: float | None = None,
                  max_points: int = DEFAULT_SYSTEM_POINTS) -> dict[str, Any]:
    """The run's system metrics after time `after` (unix s): {series: {key: {at,
    values, total, downsampled}}, last_at}. A key with more than `max_points` samples
    is downsampled with M4 over equal time buckets (spikes survive)."""
    max_points = max(8, int(max_points))
    series: dict[str, dict[str, Any]] = {}
    if "system_metrics" not in has_tables(conn):
        return {"series": series, "last_at": after}
    params: list[Any] = [run_key]
    where = ""
    if after is not None:
        where = " AND s.at > ?"
        params.append(after)
    last_at = after
    for key, at, value in conn.execute(
            "SELECT k.key, s.at, s.value FROM system_metrics s JOIN metric_keys k"
            f" ON k.key_id = s.key_id WHERE s.run_key = ?{where} ORDER BY s.key_id, s.at",
            params):
        entry = series.setdefault(key, {"at": [], "values": []})
        entry["at"].append(at)
        entry["values"].append(value if value is None or math.isfinite(value) else None)
        if last_at is None or at > last_at:
            last_at = at
    for entry in series.values():
        entry["total"] = len(entry["at"])
        entry["downsampled"] = entry["total"] > max_points
        if entry["downsampled"]:
            entry["at"], entry["values"] = _m4(entry["at"], entry["values"], max_points // 4)
    return {"series": dict(sorted(series.items())), "last_at": last_at}


def referenced_blob(conn: sqlite3.Connection, sha256: str) -> dict[str, Any] | None:
    """{sha256, size, head (first 64 bytes), paths} of a blob that some run's files
    reference; None if there is no such blob or no run references it."""
    if not {"blobs", "run_files"} <= has_tables(conn):
        return None
    paths = [p for (p,) in conn.execute(
        "SELECT DISTINCT path FROM run_files WHERE sha256 = ? ORDER BY path", (sha256,))]
    if not paths and conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'artifact_files'").fetchone():
        # the file of an artifact version (kept inside the store)
        paths = [p for (p,) in conn.execute(
            "SELECT DISTINCT path FROM artifact_files WHERE sha256 = ? AND location IS NULL"
            " ORDER BY path", (sha256,))]
    if not paths:
        return None
    row = conn.execute("SELECT size, substr(content, 1, 64) FROM blobs WHERE sha256 = ?",
                       (sha256,)).fetchone()
    if row is None:
        return None
    return {"sha256": sha256, "size": row[0], "head": bytes(row[1] or b""), "paths": paths}


def blob_range(conn: sqlite3.Connection, sha256: str, start: int = 0,
               length: int | None = None) -> bytes:
    """`length` bytes of a blob from offset `start` (all of the rest without a length)."""
    if length is None:
        row = conn.execute("SELECT substr(content, ?) FROM blobs WHERE sha256 = ?",
                           (start + 1, sha256)).fetchone()
    else:
        row = conn.execute("SELECT substr(content, ?, ?) FROM blobs WHERE sha256 = ?",
                           (start + 1, length, sha256)).fetchone()
    return b"" if row is None or row[0] is None else bytes(row[0])


def run_output(conn: sqlite3.Connection, run_key: int,
               console_limit: int = DEFAULT_CONSOLE_LIMIT) -> dict[str, Any]:
    """What the run page shows beyond metrics, in one trip: the first page of its
    console, its system metric keys and its media items."""
    return {
        "console": console_page(conn, run_key, -1, console_limit),
        "system_keys": system_keys(conn, run_key),
        "media": media_items(conn, run_key),
    }

