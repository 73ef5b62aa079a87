"""Artifacts in the store: versions, aliases, content-addressed files and lineage.

The tables are schema/009_artifacts.sql's. File bytes up to the inline limit are rows of
`blobs` (shared with run_files); the library writes larger ones beside the store before it
calls `add_version`, which only records where they are.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from ._schema import transaction

_VERSION = re.compile(r"^v([0-9]{1,9})$")


def add_version(
    conn: sqlite3.Connection, *, entity: str, project: str, name: str, type: str,
    description: str | None, metadata: dict[str, Any], digest: str,
    files: list[dict[str, Any]], inline: dict[str, bytes], aliases: list[str],
    run_key: int | None, at: str,
) -> dict[str, Any]:
    """Record a logged artifact in one transaction; returns the version row as a dict
    (see `_version_row`). Content equal to an existing version's reuses that version
    (its aliases are added); otherwise a new version v<N+1> is made. `latest` always
    names the newest version. `files` are dicts with path, sha256, size, location, ref;
    `inline` maps sha256 -> bytes of the files kept in `blobs`."""
    with transaction(conn):
        row = conn.execute("SELECT artifact_key, type FROM artifacts WHERE entity = ? AND"
                           " project = ? AND name = ?", (entity, project, name)).fetchone()
        if row is None:
            artifact_key = conn.execute(
                "INSERT INTO artifacts (entity, project, name, type, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (entity, project, name, type, at)).lastrowid
        else:
            artifact_key, stored_type = row
            if stored_type != type:
                raise ValueError(f"artifact {name!r} has type {stored_type!r}, not {type!r}")
        same = conn.execute("SELECT version_key FROM artifact_versions WHERE artifact_key = ?"
                            " AND digest = ? ORDER BY version DESC LIMIT 1",
                            (artifact_key, digest)).fetchone()
        if same is not None:
            version_key = same[0]
        else:
            for sha, content in inline.items():
                conn.execute("INSERT OR IGNORE INTO blobs (sha256, size, content) VALUES (?, ?, ?)",
                             (sha, len(content), content))
            number = conn.execute("SELECT coalesce(max(version), -1) + 1 FROM artifact_versions"
                                  " WHERE artifact_key = ?", (artifact_key,)).fetchone()[0]
            size = sum(f["size"] or 0 for f in files if f.get("ref") is None)
            version_key = conn.execute(
                "INSERT INTO artifact_versions (artifact_key, version, digest, description,"
                " metadata, size, file_count, logged_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (artifact_key, number, digest, description, json.dumps(metadata, default=str),
                 size, len(files), run_key, at)).lastrowid
            conn.executemany(
                "INSERT INTO artifact_files (version_key, path, sha256, size, location, ref)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(version_key, f["path"], f.get("sha256"), f.get("size"), f.get("location"),
                  f.get("ref")) for f in files])
            aliases = ["latest", *aliases]
        for alias in dict.fromkeys(aliases):  # an alias names one version: it moves here
            conn.execute("INSERT OR REPLACE INTO artifact_aliases (artifact_key, alias,"
                         " version_key) VALUES (?, ?, ?)", (artifact_key, alias, version_key))
        return _version_row(conn, version_key)


def find_version(conn: sqlite3.Connection, entity: str, project: str, name: str,
                 selector: str) -> dict[str, Any] | None:
    """The version `selector` ("v3", or an alias such as "latest") of an artifact."""
    match = _VERSION.match(selector)
    if match:
        row = conn.execute(
            "SELECT v.version_key FROM artifact_versions v JOIN artifacts a"
            " ON a.artifact_key = v.artifact_key WHERE a.entity = ? AND a.project = ?"
            " AND a.name = ? AND v.version = ?",
            (entity, project, name, int(match.group(1)))).fetchone()
    else:
        row = conn.execute(
            "SELECT x.version_key FROM artifact_aliases x JOIN artifacts a"
            " ON a.artifact_key = x.artifact_key WHERE a.entity = ? AND a.project = ?"
            " AND a.name = ? AND x.alias = ?", (entity, project, name, selector)).fetchone()
    return None if row is None else _version_row(conn, row[0])


def use_version(conn: sqlite3.Connection, run_key: int, version_key: int, at: str) -> None:
    """Record that a run used a version (once per run and version)."""
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO artifact_usage (run_key, version_key, used_at)"
                     " VALUES (?, ?, ?)", (run_key, version_key, at))


def read_blob(conn: sqlite3.Connection, sha256: str) -> bytes | None:
    row = conn.execute("SELECT content FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
    return None if row is None else bytes(row[0])


def _version_row(conn: sqlite3.Connection, version_key: int) -> dict[str, Any]:
    (entity, project, name, type, version, digest, description, metadata, size, count,
     logged_by, logged_by_key, created_at) = conn.execute(
        "SELECT a.entity, a.project, a.name, a.type, v.version, v.digest, v.description,"
        " v.metadata, v.size, v.file_count, r.id, r.run_key, v.created_at"
        " FROM artifact_versions v"
        " JOIN artifacts a ON a.artifact_key = v.artifact_key"
        " LEFT JOIN run_records r ON r.run_key = v.logged_by WHERE v.version_key = ?",
        (version_key,)).fetchone()
    aliases = [a for (a,) in conn.execute(
        "SELECT alias FROM artifact_aliases WHERE version_key = ? ORDER BY alias",
        (version_key,))]
    files = [dict(zip(("path", "sha256", "size", "location", "ref"), row, strict=True))
             for row in conn.execute("SELECT path, sha256, size, location, ref FROM"
                                     " artifact_files WHERE version_key = ? ORDER BY path",
                                     (version_key,))]
    users = conn.execute(
        "SELECT r.id, r.run_key FROM artifact_usage g JOIN run_records r"
        " ON r.run_key = g.run_key WHERE g.version_key = ? ORDER BY g.used_at",
        (version_key,)).fetchall()
    return {"version_key": version_key, "entity": entity, "project": project, "name": name,
            "type": type, "version": version, "digest": digest, "description": description,
            "metadata": json.loads(metadata), "size": size, "file_count": count,
            "logged_by": logged_by, "logged_by_key": logged_by_key, "created_at": created_at,
            "aliases": aliases, "files": files, "used_by": [run_id for run_id, _ in users],
            "used_by_keys": [key for _, key in users]}


def run_artifacts(conn: sqlite3.Connection, run_key: int) -> dict[str, list[dict[str, Any]]]:
    """The artifact versions a run logged and used: {"logged": [...], "used": [...]},
    each a dict with name, type, version ("v0"), aliases, digest, size, file_count and
    the runs that logged / used it (ids, and run keys in logged_by_key, used_by_keys)."""
    def rows(sql: str) -> list[dict[str, Any]]:
        out = []
        for (version_key,) in conn.execute(sql, (run_key,)).fetchall():
            row = _version_row(conn, version_key)
            row.pop("files")
            row["version"] = f"v{row['version']}"
            out.append(row)
        return out

    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'artifact_versions'").fetchone() \
            is None:  # a store older than version 9, opened read-only
        return {"logged": [], "used": []}
    return {
        "logged": rows("SELECT version_key FROM artifact_versions WHERE logged_by = ?"
                       " ORDER BY version_key"),
        "used": rows("SELECT version_key FROM artifact_usage WHERE run_key = ?"
                     " ORDER BY used_at, version_key"),
    }


def _source_has_artifacts(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM source.sqlite_master WHERE name = 'artifact_versions'"
                        ).fetchone() is not None


def external_locations(conn: sqlite3.Connection, source_key: int) -> list[str]:
    """Where the files kept beside the attached store (`source`) of the versions its run
    `source_key` logged are, relative to that store's directory (to copy before merging)."""
    if not _source_has_artifacts(conn):
        return []
    return [loc for (loc,) in conn.execute(
        "SELECT DISTINCT f.location FROM source.artifact_files f JOIN source.artifact_versions"
        " v ON v.version_key = f.version_key WHERE v.logged_by = ? AND f.location IS NOT NULL",
        (source_key,))]


def merge_artifacts(conn: sqlite3.Connection, source_key: int, target_key: int, entity: str,
                    project: str) -> int:
    """Copy the artifact versions the attached run `source_key` logged, and its uses of
    them, to run `target_key` of this store (in `entity`/`project`); versions are numbered
    anew here, and content already here reuses its version, so merging twice changes
    nothing. Returns the versions merged. Call inside a transaction."""
    if not _source_has_artifacts(conn):
        return 0
    mapped: dict[int, int] = {}
    versions = conn.execute(
        "SELECT v.version_key, a.name, a.type, v.digest, v.description, v.metadata,"
        " v.created_at FROM source.artifact_versions v JOIN source.artifacts a"
        " ON a.artifact_key = v.artifact_key WHERE v.logged_by = ? ORDER BY v.version_key",
        (source_key,)).fetchall()
    for key, name, type, digest, description, metadata, at in versions:
        files = [dict(zip(("path", "sha256", "size", "location", "ref"), row, strict=True))
                 for row in conn.execute("SELECT path, sha256, size, location, ref FROM"
                                         " source.artifact_files WHERE version_key = ?", (key,))]
        inline = {sha: bytes(content) for sha, content in conn.execute(
            "SELECT b.sha256, b.content FROM source.blobs b JOIN source.artifact_files f"
            " ON f.sha256 = b.sha256 WHERE f.version_key = ? AND f.location IS NULL", (key,))}
        aliases = [alias for (alias,) in conn.execute(
            "SELECT alias FROM source.artifact_aliases WHERE version_key = ?"
            " AND alias != 'latest' ORDER BY alias", (key,))]
        row = add_version(conn, entity=entity, project=project, name=name, type=type,
                          description=description, metadata=json.loads(metadata),
                          digest=digest, files=files, inline=inline, aliases=aliases,
                          run_key=target_key, at=at)
        mapped[key] = row["version_key"]
    for key, used_at in conn.execute("SELECT version_key, used_at FROM source.artifact_usage"
                                     " WHERE run_key = ?", (source_key,)).fetchall():
        if key in mapped:
            use_version(conn, target_key, mapped[key], used_at)
    return len(versions)
