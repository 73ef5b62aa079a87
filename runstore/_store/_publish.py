"""Published runs: a node writes a delta of one run into a file of its own; a hub merges
such files into its store (schema/011_published.sql, docs/SCALE-OUT.md).

A delta file is a store with this schema holding one run: its row as it stands, what it
logged after the previous file's marks, and a `publish_meta` table saying whose it is.
Merging is idempotent and order-free: points, steps and console lines are keyed, so a
file merged twice or late adds nothing twice; the run's columns come from the newest
file (by the node's `published_ns`).
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ._blocks import rebuild_blocks
from ._read import _row_dict
from ._runs import RUN_COLUMNS, find_run_key, insert_run, update_run
from ._schema import latest_version, migrate, transaction

SOURCE = "published"
_SYNCED_PREFIX = "published:"


@dataclass(frozen=True)
class Marks:
    """How far a publisher's earlier files reached: last step, console line, system
    sample time, and the run files already sent."""

    step: int = -1
    console: int = -1
    system: float = -math.inf
    files: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (path, sha256)


def _columns(conn: sqlite3.Connection, table: str) -> str:
    return ", ".join(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))


def empty_delta(target: Path) -> None:
    """An empty store file of this schema, to copy for each delta (migrating a new file
    each time would cost far more than what most deltas hold)."""
    out = sqlite3.connect(target, isolation_level=None)
    try:
        migrate(out)
    finally:
        out.close()


def export_delta(store: Path, run_key: int, target: Path, marks: Marks,
                 meta: dict[str, Any]) -> tuple[Marks, int]:
    """Write into `target` (a copy of `empty_delta`'s file) run `run_key` of `store`,
    with what it logged after `marks`; returns the new marks and the points written.
    Reads one consistent snapshot of `store` and takes no write lock on it (the run's
    writer goes on)."""
    out = sqlite3.connect(target, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode = OFF")  # a scratch file: rebuilt if it fails
        out.execute("PRAGMA synchronous = OFF")
        out.execute(f"ATTACH DATABASE ? AS {SOURCE}", (str(store),))
        out.execute("BEGIN")  # deferred: a read snapshot of the store, writes to `target`
        new_marks, points = _copy_run(out, run_key, marks)
        out.execute("CREATE TABLE publish_meta (key TEXT PRIMARY KEY, value)")
        out.executemany("INSERT INTO publish_meta VALUES (?, ?)",
                        sorted({**meta, "since_step": marks.step, "points": points}.items()))
        out.execute("COMMIT")
        out.execute(f"DETACH DATABASE {SOURCE}")
    finally:
        out.close()
    return new_marks, points


def _copy_run(out: sqlite3.Connection, run_key: int, marks: Marks) -> tuple[Marks, int]:
    s = SOURCE
    for table in ("run_records", "metric_keys"):
        where = " WHERE run_key = ?" if table == "run_records" else ""
        cols = _columns(out, table)
        out.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {s}.{table}{where}",
                    (run_key,) if where else ())
    out.execute(f"INSERT INTO steps SELECT * FROM {s}.steps WHERE run_key = ? AND step > ?",
                (run_key, marks.step))
    points = 0
    key_ids = [r[0] for r in out.execute(
        f"SELECT key_id FROM {s}.metric_keys k WHERE EXISTS (SELECT 1 FROM {s}.history h "
        "WHERE h.run_key = ? AND h.key_id = k.key_id)", (run_key,))]
    for key_id in key_ids:  # one range per key: cheap however long the run already is
        points += out.execute(
            f"INSERT INTO history SELECT * FROM {s}.history WHERE run_key = ? AND key_id = ?"
            " AND step > ?", (run_key, key_id, marks.step)).rowcount
    out.execute(f"INSERT INTO console_lines SELECT * FROM {s}.console_lines WHERE run_key = ?"
                " AND seq > ?", (run_key, marks.console))
    for (key_id,) in out.execute(f"SELECT DISTINCT key_id FROM {s}.system_metrics"
                                 " WHERE run_key = ?", (run_key,)).fetchall():
        out.execute(f"INSERT INTO system_metrics SELECT * FROM {s}.system_metrics"
                    " WHERE run_key = ? AND key_id = ? AND at > ?",
                    (run_key, key_id, marks.system))
    files = [(p, sha) for p, sha in out.execute(
        f"SELECT path, sha256 FROM {s}.run_files WHERE run_key = ?", (run_key,))
        if (p, sha) not in marks.files]  # new, or saved again with new content
    for path, sha in files:
        out.execute(f"INSERT INTO run_files SELECT * FROM {s}.run_files WHERE run_key = ?"
                    " AND path = ?", (run_key, path))
        out.execute(f"INSERT OR IGNORE INTO blobs SELECT * FROM {s}.blobs WHERE sha256 = ?",
                    (sha,))
    step, console, system = out.execute(
        "SELECT (SELECT max(step) FROM steps), (SELECT max(seq) FROM console_lines),"
        " (SELECT max(at) FROM system_metrics)").fetchone()
    return replace(
        marks,
        step=marks.step if step is None else step,
        console=marks.console if console is None else console,
        system=marks.system if system is None else system,
        files=marks.files | set(files)), points


# -- the hub ------------------------------------------------------------------------------


def merged_names(conn: sqlite3.Connection) -> set[str]:
    """The names of every published file merged into this store."""
    return {r[0] for r in conn.execute("SELECT name FROM published_files")}


def merged(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the published file `name` was merged already."""
    return conn.execute("SELECT 1 FROM published_files WHERE name = ?",
                        (name,)).fetchone() is not None


def merge_delta(conn: sqlite3.Connection, path: Path, now: str) -> dict[str, Any]:
    """Merge one published file into this store in one transaction; returns what it
    held (entity, project, id, state, points, final). A file merged before: skipped."""
    conn.execute(f"ATTACH DATABASE ? AS {SOURCE}", (str(path),))
    try:
        version = conn.execute(f"PRAGMA {SOURCE}.user_version").fetchone()[0]
        if version != latest_version():
            raise UsageError(f"{path.name} has schema version {version}, this hub "
                             f"{latest_version()}: upgrade runstore on the hub or the node")
        try:
            meta = dict(conn.execute(f"SELECT key, value FROM {SOURCE}.publish_meta"))
            session, seq = int(meta["session"]), int(meta["seq"])
            int(meta["published_ns"])
        except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path.name} is not a published run ({exc})") from None
        try:
            cur = conn.execute(f"SELECT * FROM {SOURCE}.run_records")
            rows = cur.fetchall()
        except sqlite3.Error as exc:
            raise UsageError(f"{path.name} is not a published run ({exc})") from None
        if len(rows) != 1:
            raise UsageError(f"{path.name} is not a published run: it holds {len(rows)} runs")
        row = dict(_row_dict(cur, rows[0]))
        meta.update(session=session, seq=seq)
        with transaction(conn):
            if merged(conn, path.name):
                return {**_said(row, meta), "points": 0, "skipped": True}
            points = _merge(conn, row, meta, path.name, now)
        return {**_said(row, meta), "points": points, "skipped": False}
    finally:
        conn.execute(f"DETACH DATABASE {SOURCE}")


def _said(row: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {"entity": row["entity"], "project": row["project"], "id": row["id"],
            "state": row["state"], "final": bool(meta.get("final"))}


def _merge(conn: sqlite3.Connection, row: dict[str, Any], meta: dict[str, Any], name: str,
           now: str) -> int:
    s = SOURCE
    source_key = row["run_key"]
    fields = {k: row[k] for k in RUN_COLUMNS if k in row}
    fields.update(parent_run_key=None, synced_from=f"{_SYNCED_PREFIX}{meta.get('host')}")
    session, seq = meta["session"], meta["seq"]
    target = find_run_key(conn, fields["entity"], fields["project"], fields["id"])
    if target is None:
        target, newest = insert_run(conn, fields), True
    else:
        origin = conn.execute("SELECT synced_from FROM run_records WHERE run_key = ?",
                              (target,)).fetchone()[0]
        if not str(origin or "").startswith(_SYNCED_PREFIX):
            raise UsageError(f"run {fields['id']!r} of {fields['entity']}/{fields['project']} "
                             f"exists in this store and was not published; {name} is not "
                             "merged")
        last = conn.execute("SELECT session, seq FROM published_runs WHERE run_key = ?",
                            (target,)).fetchone()
        if last is not None and last[0] != session:
            raise UsageError(
                f"run {fields['id']!r} of {fields['entity']}/{fields['project']} was already "
                f"published by another process; {name} comes from a second run given the "
                "same id (a requeued job?), which publishing cannot resume. Give each job "
                "its own id, or sync the node's store into a store of its own")
        newest = last is None or seq >= last[1]
        if newest:
            update_run(conn, target, {k: v for k, v in fields.items()
                                      if k not in ("entity", "project", "id")})
    if newest and fields["state"] == "running":
        update_run(conn, target, {"heartbeat_at": now})  # the hub vouches while files come
    conn.execute(f"INSERT OR IGNORE INTO metric_keys (key) SELECT key FROM {s}.metric_keys")
    conn.execute(f"INSERT OR IGNORE INTO steps (run_key, step, timestamp, runtime) SELECT ?,"
                 f" step, timestamp, runtime FROM {s}.steps WHERE run_key = ?",
                 (target, source_key))
    points = conn.execute(
        f"INSERT OR IGNORE INTO history (run_key, key_id, step, value, value_json)"
        f" SELECT ?, k.key_id, h.step, h.value, h.value_json FROM {s}.history h"
        f" JOIN {s}.metric_keys sk ON sk.key_id = h.key_id JOIN main.metric_keys k"
        f" ON k.key = sk.key WHERE h.run_key = ?", (target, source_key)).rowcount
    conn.execute(f"INSERT OR IGNORE INTO console_lines (run_key, seq, stream, at, line)"
                 f" SELECT ?, seq, stream, at, line FROM {s}.console_lines WHERE run_key = ?",
                 (target, source_key))
    conn.execute(
        f"INSERT OR IGNORE INTO system_metrics (run_key, key_id, at, value)"
        f" SELECT ?, k.key_id, m.at, m.value FROM {s}.system_metrics m"
        f" JOIN {s}.metric_keys sk ON sk.key_id = m.key_id JOIN main.metric_keys k"
        f" ON k.key = sk.key WHERE m.run_key = ?", (target, source_key))
    conn.execute(f"INSERT OR IGNORE INTO blobs (sha256, size, content) SELECT sha256, size,"
                 f" content FROM {s}.blobs")
    conn.execute(f"INSERT INTO run_files (run_key, path, kind, sha256, created_at)"
                 f" SELECT ?, path, kind, sha256, created_at FROM {s}.run_files"
                 f" WHERE run_key = ? AND true ON CONFLICT (run_key, path) DO UPDATE SET"
                 " kind = excluded.kind, sha256 = excluded.sha256, created_at ="
                 " excluded.created_at WHERE excluded.created_at > run_files.created_at",
                 (target, source_key))  # a file saved again: its newest content wins
    first = conn.execute(f"SELECT min(step) FROM {s}.steps").fetchone()[0]
    if first is not None:
        rebuild_blocks(conn, target, first)
    conn.execute("INSERT INTO published_files (name, run_key, session, seq, published_ns,"
                 " points, final, merged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (name, target, session, seq, int(meta["published_ns"]), points,
                  int(bool(meta.get("final"))), now))
    conn.execute("INSERT INTO published_runs (run_key, session, seq, seen_at) VALUES"
                 " (?, ?, ?, ?) ON CONFLICT (run_key) DO UPDATE SET seq = max(seq,"
                 " excluded.seq), seen_at = excluded.seen_at",
                 (target, session, seq, time.time()))
    return points


def keep_alive(conn: sqlite3.Connection, now: str, silent_after_s: float) -> list[str]:
    """The hub's heartbeat for published runs still running whose files keep coming; a
    run silent for `silent_after_s` is recorded crashed. Returns the ids it crashed."""
    cutoff = time.time() - silent_after_s
    with transaction(conn):
        crashed = [r[0] for r in conn.execute(
            "SELECT r.id FROM run_records r JOIN published_runs p USING (run_key)"
            " WHERE r.state = 'running' AND p.seen_at < ?", (cutoff,))]
        conn.execute(
            "UPDATE run_records SET state = 'crashed' WHERE state = 'running' AND run_key IN"
            " (SELECT run_key FROM published_runs WHERE seen_at < ?)", (cutoff,))
        conn.execute(
            "UPDATE run_records SET heartbeat_at = ? WHERE state = 'running' AND run_key IN"
            " (SELECT run_key FROM published_runs WHERE seen_at >= ?)", (now, cutoff))
    return crashed
