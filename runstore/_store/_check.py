"""Looking at a store file without opening it as a store (no migration, no writes):
its integrity, its schema version. Used by `runstore restore` and `runstore ui
--read-only`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .._errors import CommError


def integrity_check(path: str | Path) -> list[str]:
    """The rows of `PRAGMA integrity_check` on the database file `path` (["ok"] when it
    is sound); CommError if it is not a database at all."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise CommError(f"{path} is not a usable database: {exc}") from exc
    finally:
        conn.close()


def schema_version(path: str | Path) -> int:
    """The schema version (`PRAGMA user_version`) of the store file `path`, read with the
    file opened immutable: nothing is written, not even a -wal or -shm file."""
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?immutable=1", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise CommError(f"cannot open the store {path}: {exc}") from exc
    finally:
        conn.close()
