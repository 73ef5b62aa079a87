"""Helpers of the UI tests: requests to a fresh Datasette with the plugin, runs and points
written straight into a store, and the URL of a run's page. Every test that uses them is
marked `ui` (the Makefile runs those again on Datasette's 1.0 line)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from datasette.app import Datasette

from runstore import _store

T0 = 1_700_000_000.0  # the unix time of step 0 of the points add_points writes


def ui_get(paths: list[Path] | Path, *urls: str, settings: dict | None = None,
           metadata: dict | None = None, actor: dict | None = None,
           headers: dict | None = None, method: str = "get") -> list[Any]:
    """Request each URL (redirects not followed) from one fresh Datasette serving the
    database files `paths`, in one event loop; as `actor` (a signed ds_actor cookie)
    when given."""
    files = [str(p) for p in (paths if isinstance(paths, list) else [paths])]

    async def go() -> list[Any]:
        ds = Datasette(files, settings=settings, metadata=metadata)
        options: dict[str, Any] = {}
        if actor:
            options["cookies"] = {"ds_actor": ds.sign({"a": actor}, "actor")}
        if headers:
            options["headers"] = headers
        send = getattr(ds.client, method)
        return [await send(url, **options) for url in urls]

    return asyncio.run(go())


def run_url(run_key: Any) -> str:
    """The run page of run `run_key` in a store served as database `runstore`."""
    return f"/runstore/-/runstore/run/{run_key}"


def add_run(conn: sqlite3.Connection, project: str, run_id: str, name: str,
            **fields: Any) -> int:
    """A run of entity `me` in `project` (created 2024-05-01 unless `created_at` says
    otherwise, any other run column in `fields`); its run_key."""
    return _store.insert_run(conn, {
        "entity": "me", "project": project, "id": run_id, "name": name,
        "created_at": fields.pop("created_at", "2024-05-01T12:00:00+00:00"), **fields,
    })


def add_points(conn: sqlite3.Connection, run_key: int, key: str, points: list[tuple],
               *, every: float = 1.0) -> None:
    """Points of one metric: (step, value) or (step, value, value_json). Step s was
    committed at T0 + every * s, with runtime every * s."""
    cache: dict[str, int] = {}
    _store.intern_keys(conn, [key], cache)
    steps = sorted({p[0] for p in points})
    with _store.transaction(conn):
        _store.insert_points(
            conn,
            [(run_key, s, T0 + every * s, every * s) for s in steps],
            [(run_key, cache[key], p[0], p[1], p[2] if len(p) > 2 else None) for p in points],
        )
