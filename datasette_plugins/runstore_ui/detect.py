"""Which attached databases are runstore stores (the plugin ignores all others)."""

from __future__ import annotations

import time
import weakref
from typing import Any

from runstore._store import canned_queries, is_runstore

from .compat import configure_store
from .metadata import store_metadata

# A database that is not a store yet may become one (a script creates it after
# the UI started), so negative answers are re-checked after this many seconds.
_RECHECK_S = 5.0

# datasette -> {database name: (id of the Database object, is a store, checked at)}
_cache: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, bool, float]]] = (
    weakref.WeakKeyDictionary()
)


def _cached(datasette: Any, name: str) -> bool | None:
    db = datasette.databases.get(name)
    if db is None:
        return False
    entry = _cache.get(datasette, {}).get(name)
    if entry is None or entry[0] != id(db):
        return None
    if not entry[1] and time.monotonic() - entry[2] > _RECHECK_S:
        return None
    return entry[1]


def _remember(datasette: Any, name: str, answer: bool) -> bool:
    db = datasette.databases.get(name)
    if db is not None:
        _cache.setdefault(datasette, {})[name] = (id(db), answer, time.monotonic())
    return answer


async def is_store(datasette: Any, name: str | None) -> bool:
    """True if database `name` of this Datasette is a runstore store. A store found
    here for the first time gets its table options and canned queries where
    Datasette keeps those in configuration and stored queries (1.0)."""
    if name is None:
        return False
    known = _cached(datasette, name)
    if known is not None:
        return known
    db = datasette.databases.get(name)
    try:
        answer = bool(await db.execute_fn(is_runstore))
    except Exception:  # an unreadable database is simply not ours
        answer = False
    if answer:
        await configure_store(datasette, name, store_metadata(), canned_queries())
    return _remember(datasette, name, answer)


def is_store_sync(datasette: Any, name: str) -> bool:
    """Like `is_store`, for synchronous hooks: reads the cache, else opens its own
    read-only connection."""
    known = _cached(datasette, name)
    if known is not None:
        return known
    db = datasette.databases.get(name)
    answer = False
    try:
        conn = db.connect()
        try:
            answer = is_runstore(conn)
        finally:
            conn.close()
    except Exception:  # an unreadable database is simply not ours
        answer = False
    return _remember(datasette, name, answer)


def user_databases(datasette: Any) -> list[str]:
    """Names of the attached databases, without Datasette's internal one."""
    return [name for name in list(datasette.databases) if name != "_internal"]


def store_names(datasette: Any) -> list[str]:
    """Names of the attached databases that are stores (synchronous)."""
    return [name for name in user_databases(datasette) if is_store_sync(datasette, name)]
