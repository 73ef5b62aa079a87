"""Writes to the run_records table (read through the `runs` view): create, update,
finish."""

from __future__ import annotations

import sqlite3
from typing import Any, TypedDict

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


class RunRow(TypedDict, total=False):
    """A run as the store's reads return it (`get_run`, `get_run_by_key`, `list_runs`):
    the `runs` view's columns (RUN_COLUMNS, run_key, resume_count), JSON decoded, and
    `recorded_state`, the state as written (the view shows a stale run as crashed).
    Not total: the same shape types the partial rows other code builds."""

    run_key: int
    entity: str
    project: str
    id: str
    name: str
    state: str
    recorded_state: str
    notes: str | None
    tags: list[str]
    run_group: str | None
    job_type: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    # define_metric() calls; a run that made none holds {} (see `metric_definitions`)
    metric_definitions: list[dict[str, Any]] | dict[str, Any]
    created_at: str
    heartbeat_at: str | None
    finished_at: str | None
    runtime: float | None
    exit_code: int | None
    host: str | None
    pid: int | None
    os_user: str | None
    program: str | None
    args: list[str] | None
    python_version: str | None
    git_commit: str | None
    git_remote: str | None
    git_branch: str | None
    git_dirty: int | None
    parent_run_key: int | None
    fork_step: int | None
    resume_count: int
    synced_from: str | None
    pid_started: str | None


def metric_definitions(row: RunRow) -> list[dict[str, Any]]:
    """A run's define_metric() calls, as a list (its row holds {} until the first)."""
    stored = row.get("metric_definitions")
    return stored if isinstance(stored, list) else []


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
        run_key = cur.lastrowid
        assert run_key is not None  # an INSERT sets it
        return run_key


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
