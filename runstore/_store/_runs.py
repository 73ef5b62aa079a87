"""Writes to the run_records table (read through the `runs` view): create, update,
finish."""

from __future__ import annotations

import sqlite3
from typing import Any

from .._errors import UsageError
from ._json import dumps
from ._schema import transaction

# Column names are fixed here, never taken from user data.
RUN_COLUMNS = (
    "entity", "project", "id", "name", "state", "notes", "tags", "run_group", "job_type",
    "config", "summary", "metric_definitions", "created_at", "heartbeat_at", "finished_at",
    "runtime", "exit_code", "host", "pid", "os_user", "program", "args", "python_version",
    "git_commit", "git_remote", "git_branch", "git_dirty", "parent_run_key", "fork_step",
    "synced_from", "pid_started",
)
_SETTABLE = frozenset(RUN_COLUMNS) - {"entity", "project", "id"}
# Columns holding JSON; callers pass Python objects.
JSON_COLUMNS = frozenset({"tags", "config", "summary", "metric_definitions", "args"})


def _encoded(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: dumps(v) if k in JSON_COLUMNS else v for k, v in fields.items()}


def _checked(fields: dict[str, Any], allowed: frozenset[str] | tuple[str, ...]) -> list[str]:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValueError(f"not run columns: {sorted(unknown)}")
    return list(fields)


def insert_run(conn: sqlite3.Connection, fields: dict[str, Any]) -> int:
    """Insert a new run in one transaction and return its run_key.

    An id already used in (entity, project) is a UsageError: runstore never
    overwrites a run.
    """
    cols = _checked(fields, RUN_COLUMNS)
    fields = _encoded(fields)
    with transaction(conn):
        if find_run_key(conn, fields["entity"], fields["project"], fields["id"]) is not None:
            raise UsageError(
                f"a run with id {fields['id']!r} already exists in project "
                f"{fields['entity']}/{fields['project']}; pass resume='allow' (or 'must') "
                "to continue it, or choose another id"
            )
        cur = conn.execute(
            f"INSERT INTO run_records ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [fields[c] for c in cols],
        )
        return int(cur.lastrowid)


def find_run_key(conn: sqlite3.Connection, entity: str, project: str, run_id: str) -> int | None:
    row = conn.execute(
        "SELECT run_key FROM run_records WHERE entity = ? AND project = ? AND id = ?",
        (entity, project, run_id),
    ).fetchone()
    return None if row is None else int(row[0])


def update_run(conn: sqlite3.Connection, run_key: int, fields: dict[str, Any]) -> None:
    """Set some columns of one run."""
    if not fields:
        return
    cols = _checked(fields, _SETTABLE)
    fields = _encoded(fields)
    conn.execute(
        f"UPDATE run_records SET {', '.join(c + ' = ?' for c in cols)} WHERE run_key = ?",
        [fields[c] for c in cols] + [run_key],
    )


def count_runs(conn: sqlite3.Connection, entity: str, project: str) -> int:
    """How many runs (entity, project) holds."""
    return int(conn.execute(
        "SELECT count(*) FROM run_records WHERE entity = ? AND project = ?", (entity, project)
    ).fetchone()[0])
