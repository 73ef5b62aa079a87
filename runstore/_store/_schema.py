"""Opening a store: connection pragmas, transactions and schema migrations."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .._errors import CommError

BUSY_TIMEOUT_S = 30.0


def _schema_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    # Installed wheels carry the schema inside the package; a source checkout
    # (editable install, tests) has it at the repository root.
    for candidate in (here / "schema", here.parent / "schema"):
        if candidate.is_dir():
            return candidate
    raise CommError(f"runstore's schema files are missing (looked in {here / 'schema'})")


def migrations() -> list[tuple[int, Path]]:
    """The numbered migration files, in order."""
    found = []
    for path in _schema_dir().glob("[0-9][0-9][0-9]_*.sql"):
        found.append((int(path.name[:3]), path))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


_savepoints = itertools.count()


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction at the top level, a savepoint when nested.

    The error that ends the block is the one that propagates, as in sqlite-utils'
    `Database.atomic()`; a failed COMMIT is rolled back, so the connection is never
    left inside a transaction that later blocks would silently nest in.
    """
    if conn.in_transaction:
        savepoint = f"runstore_{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {savepoint}")
        try:
            yield conn
        except BaseException:
            # A full disk or an I/O error can make SQLite roll the whole transaction back:
            # cleaning up anyway would hide that error behind "no such savepoint".
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
            raise
        conn.execute(f"RELEASE {savepoint}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # Likewise: a ROLLBACK with no transaction left would say "cannot rollback - no
        # transaction is active" instead of "database or disk is full".
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may leave a failed COMMIT's transaction open (SQLITE_FULL, _BUSY, _IOERR):
        # roll it back, or every later block becomes a savepoint that never commits.
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if SQLite has not already; never raise over the error being handled."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _statements(sql: str) -> Iterator[str]:
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        yield buf


def _enable_search(conn: sqlite3.Connection) -> None:
    from ._runs_table import enable_search

    enable_search(conn)


# Steps run after a migration's SQL, in its transaction (version 12: sqlite-utils sets
# up the runs' full-text search).
_PYTHON_STEPS = {12: _enable_search}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the store up to the newest schema, one transaction per migration."""
    known = migrations()
    newest = known[-1][0]
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current == newest:
        return current
    if current > newest:
        raise CommError(
            f"the store has schema version {current}, newer than this runstore knows "
            f"({newest}); upgrade runstore to open it"
        )
    for version, path in known:
        with transaction(conn):
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                continue
            for statement in _statements(path.read_text()):
                conn.execute(statement)
            if version in _PYTHON_STEPS:  # the part of a migration written in Python
                _PYTHON_STEPS[version](conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
    return newest


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path`, migrated to the newest schema."""
    path = Path(path)
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                isolation_level=None, check_same_thread=False,
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            try:
                migrate(conn)
            except CommError as exc:
                conn.close()
                raise CommError(f"cannot open the store {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise CommError(f"cannot open the store {path}: {exc}") from exc
    except OSError as exc:
        raise CommError(f"cannot create the store {path}: {exc}") from exc
    return conn


def snapshot_to(conn: sqlite3.Connection, target: str | Path) -> None:
    """Copy everything `conn` sees into a new database file `target` (VACUUM INTO: one
    consistent snapshot, even while the file `conn` opened is gone or replaced)."""
    conn.execute("VACUUM INTO ?", (str(target),))
