"""What every page and route of the plugin checks first: that the database the URL
names is a store, and that the actor may view its runs (as Datasette's own table page
checks it); under a run's URL, also which run it names. And the numeric query
arguments of the JSON routes."""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import BadRequest, NotFound

from . import _detect
from ._compat import database_from_route, ensure_can_view_runs

RUN_PATH = r"^/(?P<database>[^/]+)/-/runstore/run/(?P<run_key>\d+)"
INT64_MAX = 2**63 - 1
MAX_POINTS = 20000


async def store_db(datasette: Any, request: Any) -> Any:
    """The store database named by the URL, after permission checks."""
    db = database_from_route(datasette, request.url_vars["database"])
    await ensure_can_view_runs(datasette, request, db.name)
    if not await _detect.is_store(datasette, db.name):
        raise NotFound(f"{db.name} is not a runstore store")
    return db


async def store_and_key(datasette: Any, request: Any) -> tuple[Any, int]:
    """The store database and run_key named by the URL (`RUN_PATH`), after permission
    checks."""
    db = await store_db(datasette, request)
    run_key = int(request.url_vars["run_key"])
    if run_key > INT64_MAX:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    return db, run_key


def number_arg(request: Any, name: str, kind: type = int) -> Any:
    """Query argument `name` as a finite number (an int clamped to SQLite's integer
    range unless `kind` is float), None when absent or empty; else BadRequest."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        number = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None
    if number != number or abs(number) == float("inf"):
        raise BadRequest(f"{name} must be a finite number")
    if kind is int:
        return max(-INT64_MAX - 1, min(int(number), INT64_MAX))
    return number


def points_arg(request: Any, default: int) -> int:
    """`points=`, the most points a chart route returns: `default` when absent or 0,
    at least 8 and at most `MAX_POINTS`."""
    return max(8, min(number_arg(request, "points") or default, MAX_POINTS))
