"""Files kept with a run (saved code, git diffs), deduplicated by content hash."""

from __future__ import annotations

import hashlib
import sqlite3


def save_file(
    conn: sqlite3.Connection, run_key: int, path: str, kind: str, content: bytes, at: str
) -> str:
    """Store `content` under `path` for a run; identical contents are stored once."""
    digest = hashlib.sha256(content).hexdigest()
    conn.execute(
        "INSERT OR IGNORE INTO blobs (sha256, size, content) VALUES (?, ?, ?)",
        (digest, len(content), content),
    )
    conn.execute(
        "INSERT OR REPLACE INTO run_files (run_key, path, kind, sha256, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (run_key, path, kind, digest, at),
    )
    return digest


def run_files(conn: sqlite3.Connection, run_key: int) -> dict[str, bytes]:
    """A run's files: path -> content."""
    rows = conn.execute(
        "SELECT f.path, b.content FROM run_files f JOIN blobs b ON b.sha256 = f.sha256"
        " WHERE f.run_key = ? ORDER BY f.path", (run_key,),
    ).fetchall()
    return {path: bytes(content) for path, content in rows}
