"""Merging a run from another store file (an offline run) into this one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._blocks import rebuild_blocks
from ._read import _row_dict
from ._runs import RunRow, find_run_key, insert_run, update_run

SOURCE = "source"


@contextmanager
def attached(conn: sqlite3.Connection, path: Path) -> Iterator[list[RunRow]]:
    """Attach another store (migrated to this schema) as `source`; yields its runs' rows
    as recorded (`run_records`: the state its process wrote, not the state shown)."""
    conn.execute(f"ATTACH DATABASE ? AS {SOURCE}", (str(path),))
    try:
        cur = conn.execute(f"SELECT * FROM {SOURCE}.run_records ORDER BY run_key")
        yield [_row_dict(cur, row) for row in cur.fetchall()]
    finally:
        conn.execute(f"DETACH DATABASE {SOURCE}")


def merge_run(
    conn: sqlite3.Connection,
    source_key: int,
    fields: dict[str, Any],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Copy one attached run into this store as `fields` describe it; returns points copied.

    A run with the same (entity, project, id) is replaced in place (its run_key kept),
    so merging the same run twice leaves the same store. Call inside a transaction.
    """
    target = find_run_key(conn, fields["entity"], fields["project"], fields["id"])
    if target is None:
        target = insert_run(conn, fields)
    else:
        update_run(conn, target, {k: v for k, v in fields.items()
                                  if k not in ("entity", "project", "id")})
        for table in ("history", "steps", "run_files"):
            conn.execute(f"DELETE FROM {table} WHERE run_key = ?", (target,))
    conn.execute(f"INSERT OR IGNORE INTO metric_keys (key) SELECT key FROM {SOURCE}.metric_keys")
    conn.execute(
        f"INSERT INTO steps (run_key, step, timestamp, runtime) SELECT ?, step, timestamp,"
        f" runtime FROM {SOURCE}.steps WHERE run_key = ?", (target, source_key),
    )
    copied = 0
    key_ids = [r[0] for r in conn.execute(
        f"SELECT key_id FROM {SOURCE}.metric_keys k WHERE EXISTS (SELECT 1 FROM "
        f"{SOURCE}.history h WHERE h.run_key = ? AND h.key_id = k.key_id)", (source_key,))]
    for key_id in key_ids:  # one range per key, so progress can be shown as it goes
        copied += conn.execute(
            f"INSERT INTO history (run_key, key_id, step, value, value_json)"
            f" SELECT ?, k.key_id, h.step, h.value, h.value_json FROM {SOURCE}.history h"
            f" JOIN {SOURCE}.metric_keys sk ON sk.key_id = h.key_id"
            f" JOIN main.metric_keys k ON k.key = sk.key"
            f" WHERE h.run_key = ? AND h.key_id = ?", (target, source_key, key_id),
        ).rowcount
        if progress is not None:
            progress(copied)
    rebuild_blocks(conn, target)
    conn.execute(
        f"INSERT OR IGNORE INTO blobs (sha256, size, content) SELECT b.sha256, b.size, b.content"
        f" FROM {SOURCE}.blobs b JOIN {SOURCE}.run_files f ON f.sha256 = b.sha256"
        f" WHERE f.run_key = ?", (source_key,),
    )
    conn.execute(
        f"INSERT INTO run_files (run_key, path, kind, sha256, created_at) SELECT ?, path, kind,"
        f" sha256, created_at FROM {SOURCE}.run_files WHERE run_key = ?", (target, source_key),
    )
    return copied


def count_points(conn: sqlite3.Connection, source_key: int) -> int:
    """How many points an attached run holds."""
    return conn.execute(
        f"SELECT count(*) FROM {SOURCE}.history WHERE run_key = ?", (source_key,)
    ).fetchone()[0]
