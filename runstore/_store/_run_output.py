"""A run's output beyond metric history, written with it: console lines, system metric
samples and files (saved code, media; blobs deduplicated by hash). The run page reads
them back through `_run_page`."""

from __future__ import annotations

import sqlite3
from typing import Any

from ._files import save_file
from ._history import intern_keys


def insert_console(conn: sqlite3.Connection, run_key: int,
                   lines: list[tuple[str, float, str]]) -> None:
    """Append (stream, at, line) rows after the run's last console line."""
    start = conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM console_lines WHERE run_key = ?",
                         (run_key,)).fetchone()[0]
    conn.executemany(
        "INSERT INTO console_lines (run_key, seq, stream, at, line) VALUES (?, ?, ?, ?, ?)",
        [(run_key, start + i, stream, at, line) for i, (stream, at, line) in enumerate(lines)],
    )


def insert_system(conn: sqlite3.Connection, run_key: int,
                  samples: list[tuple[float, dict[str, float]]], keys: dict[str, int]) -> None:
    """Store (at, {key: value}) samples of system metrics."""
    intern_keys(conn, sorted({k for _, sample in samples for k in sample}), keys)
    conn.executemany(
        "INSERT OR REPLACE INTO system_metrics (run_key, key_id, at, value) VALUES (?, ?, ?, ?)",
        [(run_key, keys[k], at, v) for at, sample in samples for k, v in sample.items()],
    )


def save_run_files(conn: sqlite3.Connection, run_key: int,
                   files: list[tuple[str, str, bytes, str]]) -> None:
    """Store (path, kind, content, at) files of a run."""
    for path, kind, content, at in files:
        save_file(conn, run_key, path, kind, content, at)


def console_lines(conn: sqlite3.Connection, run_key: int) -> list[tuple[str, float, str]]:
    """A run's console output: (stream, at, line), in order."""
    return conn.execute("SELECT stream, at, line FROM console_lines WHERE run_key = ?"
                        " ORDER BY seq", (run_key,)).fetchall()


def system_samples(conn: sqlite3.Connection, run_key: int) -> dict[str, list[tuple[float, Any]]]:
    """A run's system metrics: key -> [(at, value)] in time order."""
    out: dict[str, list[tuple[float, Any]]] = {}
    for key, at, value in conn.execute(
            "SELECT k.key, s.at, s.value FROM system_metrics s JOIN metric_keys k"
            " ON k.key_id = s.key_id WHERE s.run_key = ? ORDER BY s.key_id, s.at", (run_key,)):
        out.setdefault(key, []).append((at, value))
    return out
