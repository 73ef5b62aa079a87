"""The workspace's runs table: one view per project with config and summary keys as
columns, and full-text search over the runs (schema version 12).

The triggers of schema/012_workspace.sql record each project's keys in `project_keys`
with every write; the views are rebuilt here, by whoever reads them (the UI), when a
project's `keys_version` has moved past the version its view was built from. Project
names and keys are data: every identifier and literal built from them is quoted here
(`_ident`, `_literal`) and nothing else in runstore builds SQL from them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from ._schema import transaction

VIEW_PREFIX = "runs/"
RUN_SEARCH_TABLE = "run_records_fts"
FTS_COLUMNS = ("name", "notes", "tags", "config")
# The run's own columns, first in every project view (from the `runs` view).
BASE_COLUMNS = (
    "run_key", "name", "state", "tags", "run_group", "job_type", "created_at", "runtime",
    "notes", "id", "entity",
)
# SQLite allows 2,000 columns by default; a project with more keys shows the first ones.
MAX_KEY_COLUMNS = 1800
# Key columns sorted on get an expression index (schema 013), at most this many per project.
MAX_KEY_INDEXES = 8
KEY_INDEX_PREFIX = "runs_key_index_"


def project_view_name(project: str) -> str:
    """The name of a project's view: ``runs/<project>``, with `%` and `]` written `%25`
    and `%5D` (Datasette 0.65 quotes table names in brackets in places, where `]` cannot
    be escaped; the encoding keeps distinct projects distinct)."""
    return VIEW_PREFIX + project.replace("%", "%25").replace("]", "%5D")


def project_of_view(name: str) -> str | None:
    """The project a view name belongs to, or None if it is not a project view."""
    if not name.startswith(VIEW_PREFIX):
        return None
    return re.sub("%(25|5D)", lambda m: "%" if m.group(1) == "25" else "]",
                  name[len(VIEW_PREFIX):])


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def enable_search(conn: sqlite3.Connection) -> None:
    """FTS5 over run names, notes, tags and config (`run_records_fts`, its rowid the
    run_key), kept current by sqlite-utils' triggers. Runs inside the caller's
    transaction (sqlite-utils then runs its statements one by one, never committing)."""
    import sqlite_utils

    db = sqlite_utils.Database(conn, recursive_triggers=False)
    db.table("run_records").enable_fts(list(FTS_COLUMNS), create_triggers=True, replace=True)
    # Its update trigger fires on every update; the writer updates a run with each commit
    # and heartbeat, which never touch the indexed columns: re-index only when they change.
    columns = ", ".join(FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    conn.execute("DROP TRIGGER run_records_au")
    conn.execute(
        f"CREATE TRIGGER run_records_au AFTER UPDATE OF {columns} ON run_records "
        f"WHEN {' OR '.join(f'new.{c} IS NOT old.{c}' for c in FTS_COLUMNS)} BEGIN "
        f"INSERT INTO {RUN_SEARCH_TABLE} ({RUN_SEARCH_TABLE}, rowid, {columns}) "
        f"VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {RUN_SEARCH_TABLE} (rowid, {columns}) VALUES (new.rowid, {new}); END")


def _column_name(source: str, parts: list[str]) -> str:
    return source + "." + ".".join(parts)


def _extract(source: str, parts: list[str], numeric: bool, tagged: bool) -> str:
    """The SQL expression of one key's value in a row of `runs`."""
    if not any('"' in part for part in parts):
        # Malformed JSON (written by hand in SQL) reads as no value: json_extract would
        # fail the whole query, and with an index on the key (`ensure_key_index`) the write.
        checked = f"CASE WHEN json_valid({source}) THEN {source} END"
        path = _literal("$" + "".join('."' + part + '"' for part in parts))
        value = f"json_extract({checked}, {path})"
        if numeric and tagged:  # {"__float__": "NaN"} shows as NULL, not as 0
            value = f"CASE WHEN json_type({checked}, {path}) = 'object' THEN NULL ELSE {value} END"
    else:  # SQLite's JSON paths cannot spell a key holding '"': walk json_each instead
        value = source
        for part in parts:
            value = (f"(SELECT value FROM json_each(CASE WHEN json_valid({value}) "
                     f"THEN {value} ELSE '{{}}' END) WHERE key = {_literal(part)})")
    # NUMERIC affinity: Datasette's filters bind their values as text ('0.001'), which a
    # column with no affinity would compare as text (every number < any text).
    return f"CAST({value} AS NUMERIC)" if numeric else value


def project_columns(conn: sqlite3.Connection, project: str) -> list[tuple[str, str]]:
    """(column name, SQL expression) of a project's config and summary keys: config
    first, then summary; keys starting with `_` after the others; names made unique."""
    rows = conn.execute(
        "SELECT source, parts, numeric, tagged FROM project_keys WHERE project = ?", (project,)
    ).fetchall()
    keys = []
    for source, parts_json, numeric, tagged in rows:
        parts = [str(p) for p in json.loads(parts_json)]
        if any("\x00" in part for part in parts):
            continue  # not expressible as an identifier
        keys.append((source != "config", parts[0].startswith("_"), parts, source,
                     bool(numeric), bool(tagged)))
    keys.sort(key=lambda k: (k[0], k[1], [p.lower() for p in k[2]], k[2]))
    columns: list[tuple[str, str]] = []
    seen = set(BASE_COLUMNS)
    for _, _, parts, source, numeric, tagged in keys[:MAX_KEY_COLUMNS]:
        name = _column_name(source, parts)
        n = 2
        while name.lower() in seen:  # SQLite column names are case-insensitive
            name = f"{_column_name(source, parts)} ({n})"
            n += 1
        seen.add(name.lower())
        columns.append((name, _extract(source, parts, numeric, tagged)))
    return columns


def view_sql(conn: sqlite3.Connection, project: str,
             columns: list[tuple[str, str]] | None = None) -> str:
    """CREATE VIEW for a project's runs table."""
    columns = project_columns(conn, project) if columns is None else columns
    # run_key as an expression (same value, same affinity): `?_search=` asks for
    # `run_key IN (<matches>)`, which SQLite would otherwise answer by looking up and
    # sorting every match, where walking the sort's index stops after a page.
    select = ["CAST(run_key AS INTEGER) AS run_key"]
    select += [_ident(c) for c in BASE_COLUMNS if c != "run_key"]
    select += [f"{expr} AS {_ident(name)}" for name, expr in columns]
    return (f"CREATE VIEW {_ident(project_view_name(project))} AS\nSELECT\n    "
            + ",\n    ".join(select)
            + f"\nFROM runs WHERE project = {_literal(project)}")


def _existing_views(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'view' AND name LIKE 'runs/%'")}


_STALE = """
SELECT p.project FROM (SELECT DISTINCT project FROM run_records) p
LEFT JOIN project_views v ON v.project = p.project
WHERE v.built_version IS NULL OR v.built_version <> v.keys_version
   OR NOT EXISTS (SELECT 1 FROM sqlite_master m
                  WHERE m.type = 'view' AND m.name = 'runs/' || p.project)
"""


def stale_projects(conn: sqlite3.Connection, project: str | None = None) -> list[str]:
    """Projects whose view is missing or behind their keys (a read; cheap)."""
    sql, params = _STALE, []
    if project is not None:
        sql, params = _STALE + " AND p.project = ?", [project]
    return [row[0] for row in conn.execute(sql, params) if "\x00" not in row[0]]


def refresh_workspace_views(conn: sqlite3.Connection, project: str | None = None) -> list[str]:
    """Create or recreate the views of the projects (or of `project`) whose keys
    changed since their view was built, and drop views of projects with no runs left.
    One short write transaction; returns the views (re)built."""
    if not stale_projects(conn, project) and project is not None:
        return []
    built = []
    with transaction(conn):
        for name in stale_projects(conn, project):
            view = project_view_name(name)
            columns = project_columns(conn, name)
            conn.execute(f"DROP VIEW IF EXISTS {_ident(view)}")
            conn.execute(view_sql(conn, name, columns))
            _drop_key_indexes(conn, name, dict(columns))
            conn.execute(
                "INSERT INTO project_views (project, keys_version, built_version) "
                "VALUES (?, 0, 0) ON CONFLICT (project) DO UPDATE "
                "SET built_version = keys_version", (name,))
            built.append(view)
        if project is None:
            live = {project_view_name(row[0]) for row in
                    conn.execute("SELECT DISTINCT project FROM run_records")}
            for view in _existing_views(conn) - live:
                recorded = project_of_view(view)
                if recorded is not None and conn.execute(
                        "SELECT 1 FROM project_views WHERE project = ?", (recorded,)
                ).fetchone():
                    conn.execute(f"DROP VIEW {_ident(view)}")
                    _drop_key_indexes(conn, recorded, {})
                    conn.execute("DELETE FROM project_views WHERE project = ?", (recorded,))
                    conn.execute("DELETE FROM project_keys WHERE project = ?", (recorded,))
    return built


def _index_name(index_id: int) -> str:
    return f"{KEY_INDEX_PREFIX}{int(index_id)}"


def _has_key_indexes(conn: sqlite3.Connection) -> bool:
    """Whether the store has schema 013's table (a store not migrated yet, opened by
    Datasette as it is, has not)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                        " AND name = 'project_key_indexes'").fetchone() is not None


def _drop_key_indexes(conn: sqlite3.Connection, project: str,
                      columns: dict[str, str]) -> None:
    """Drop the project's key indexes whose column is gone from `columns` or is now
    computed by another expression (no longer the one an index would match)."""
    if not _has_key_indexes(conn):
        return
    for index_id, column, expr in conn.execute(
            "SELECT index_id, column_name, expr FROM project_key_indexes WHERE project = ?",
            (project,)).fetchall():
        if columns.get(column) != expr:
            conn.execute(f"DROP INDEX IF EXISTS {_ident(_index_name(index_id))}")
            conn.execute("DELETE FROM project_key_indexes WHERE index_id = ?", (index_id,))


def _key_expression(conn: sqlite3.Connection, project: str, column: str) -> str | None:
    """The expression of a key column of the project's view, if an index can hold it
    (a key spelled with '"' is read through json_each subqueries, which cannot)."""
    if not column.startswith(("config.", "summary.")):
        return None
    expr = dict(project_columns(conn, project)).get(column)
    if expr is None or "SELECT" in expr:
        return None
    return expr


def key_index_wanted(conn: sqlite3.Connection, project: str, column: str) -> bool:
    """Whether sorting the project's view by `column` would use an index that does not
    exist yet (a read: one probe of project_key_indexes, then the project's keys)."""
    if not _has_key_indexes(conn) or conn.execute(
            "SELECT 1 FROM project_key_indexes WHERE project = ? AND column_name = ?",
            (project, column)).fetchone():
        return False
    return _key_expression(conn, project, column) is not None


def ensure_key_index(conn: sqlite3.Connection, project: str, column: str) -> bool:
    """Index a config or summary key column of a project's view (`runs/<project>`) so
    that sorting by it walks the index instead of reading every run's JSON: an index on
    run_records (project, the view column's own expression), partial to the project.
    At most `MAX_KEY_INDEXES` per project (the oldest is dropped: each costs
    every summary rewrite of the project's runs a little). One short write transaction;
    returns whether an index was made. Call it after `refresh_workspace_views`, so the
    view's expression is the one indexed."""
    with transaction(conn):
        if not key_index_wanted(conn, project, column):
            return False
        expr = _key_expression(conn, project, column)
        assert expr is not None
        index_id = conn.execute(
            "INSERT INTO project_key_indexes (project, column_name, expr) VALUES (?, ?, ?)",
            (project, column, expr)).lastrowid
        assert index_id is not None
        # (project, key), partial to the project: SQLite passes over an index on the key
        # alone for the view's `project = ...` (runs_project_created matches it).
        conn.execute(f"CREATE INDEX {_ident(_index_name(index_id))} ON run_records "
                     f"(project, {expr}) WHERE project = {_literal(project)}")
        for (old,) in conn.execute(
                "SELECT index_id FROM project_key_indexes WHERE project = ?"
                " ORDER BY index_id DESC LIMIT -1 OFFSET ?",
                (project, MAX_KEY_INDEXES)).fetchall():
            conn.execute(f"DROP INDEX IF EXISTS {_ident(_index_name(old))}")
            conn.execute("DELETE FROM project_key_indexes WHERE index_id = ?", (old,))
    return True


def key_indexes(conn: sqlite3.Connection, project: str) -> list[str]:
    """The view columns of a project that have an index, oldest first."""
    if not _has_key_indexes(conn):
        return []
    return [row[0] for row in conn.execute(
        "SELECT column_name FROM project_key_indexes WHERE project = ? ORDER BY index_id",
        (project,))]


def workspace_projects(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The projects of a store with their run counts and newest run, newest first."""
    rows = conn.execute(
        "SELECT project, count(*), max(created_at) FROM run_records "
        "GROUP BY project ORDER BY max(created_at) DESC").fetchall()
    return [{"project": p, "runs": n, "last_created": last, "view": project_view_name(p)}
            for p, n, last in rows]
