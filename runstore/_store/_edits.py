"""Edits of a run's name, notes and tags after the fact (the UI's edit forms).

The same rules as init() and the Python API's setters (`Run.name`, `Run.notes`,
`Run.tags`): `check_name`, `check_notes` and `check_tags` of runstore._names. Where
the setters warn and keep the old value, these raise UsageError, which the UI shows.
The same column writes (`update_run`), in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from .._names import check_name, check_notes, check_tags
from ._json import loads
from ._runs import update_run
from ._schema import transaction

UNSET: Any = object()


def set_run_fields(
    conn: sqlite3.Connection,
    run_key: int,
    *,
    name: Any = UNSET,
    notes: Any = UNSET,
    tags: Any = UNSET,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
) -> dict[str, Any] | None:
    """Set the name, notes and/or tags of run `run_key` in one transaction.

    `tags` replaces the list; `add_tags` then appends (keeping order, no duplicates)
    and `remove_tags` drops. Bad values raise UsageError before anything is
    written. Returns the run's new {name, notes, tags}, or None if there is no
    such run.
    """
    fields: dict[str, Any] = {}
    if name is not UNSET:
        fields["name"] = check_name(name)
    if notes is not UNSET:
        fields["notes"] = check_notes(notes)
    new_tags = None if tags is UNSET else list(check_tags(tags))
    add = list(check_tags(list(add_tags)))
    remove = set(check_tags(list(remove_tags)))
    with transaction(conn):
        row = conn.execute(
            "SELECT name, notes, tags FROM run_records WHERE run_key = ?", (run_key,)
        ).fetchone()
        if row is None:
            return None
        if new_tags is not None or add or remove:
            current = loads(row[2]) if new_tags is None else new_tags
            current = [t for t in current or [] if isinstance(t, str)]
            merged = [t for t in dict.fromkeys(current + add) if t not in remove]
            fields["tags"] = list(check_tags(merged))
        update_run(conn, run_key, fields)
    result = {"name": row[0], "notes": row[1], "tags": loads(row[2]) or []}
    result.update(fields)
    return result
