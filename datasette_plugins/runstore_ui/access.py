"""What every page and route of the plugin checks first: that the database the URL
names is a store, and that the actor may view its runs (as Datasette's own table page
checks it); under a run's URL, also which run it names. And the numeric query
arguments of the JSON routes.

Every number in a URL, a query argument or a header is read with the helpers here,
strictly: ASCII digits only (`int()` and the regex `\\d` also take "١٢", `str.isdigit()`
even "²") and within SQLite's integer range (`int64`); else a 400 that says so (a 404
for a run_key in the path, a 416 for a byte range).
"""

from __future__ import annotations

import re
from typing import Any

from datasette.utils.asgi import BadRequest, NotFound

from . import detect
from .compat import database_from_route, ensure_can_view_runs

INT64_MAX = 2**63 - 1
MAX_POINTS = 20000
_DIGITS = re.compile(r"[0-9]+")
# A decimal number as JavaScript's String(number) writes one (the charts send zoom
# bounds so): ASCII, no spaces, underscores, "inf" or "nan", which float() accepts.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLAGS = {"": False, "0": False, "false": False, "no": False, "off": False,
          "1": True, "true": True, "yes": True, "on": True}


def int64(text: str) -> int | None:
    """`text` as a non-negative int (a run_key, a byte offset) when it is ASCII digits
    within SQLite's integer range, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(INT64_MAX)):  # also keeps int() below its 4300-digit limit
        return None
    value = int(digits)
    return value if value <= INT64_MAX else None


async def store_db(datasette: Any, request: Any) -> Any:
    """The store database named by the URL, after permission checks."""
    db = database_from_route(datasette, request.url_vars["database"])
    await ensure_can_view_runs(datasette, request, db.name)
    if not await detect.is_store(datasette, db.name):
        raise NotFound(f"{db.name} is not a runstore store")
    return db


async def store_and_key(datasette: Any, request: Any) -> tuple[Any, int]:
    """The store database and run_key named by the URL (`routes.RUN_PATH`), after
    permission checks."""
    db = await store_db(datasette, request)
    raw = request.url_vars["run_key"]
    run_key = int64(raw)
    if run_key is None:
        raise NotFound(f"No run with run_key {raw[:40]} in {db.name}")
    return db, run_key


def run_keys_arg(values: list[str]) -> list[int]:
    """run_keys from `runs=` values (comma-separated, possibly repeated), in order and
    without repeats; BadRequest for anything but digits within int64."""
    keys: dict[int, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            key = int64(part)
            if key is None:
                raise BadRequest("runs= must be run_key numbers (digits 0-9) separated by "
                                 "commas, e.g. ?runs=3,7")
            keys[key] = None
    return list(keys)


def number_arg(request: Any, name: str, kind: type = int) -> Any:
    """Query argument `name` as a finite number (an int clamped to SQLite's integer
    range unless `kind` is float), None when absent or empty; else BadRequest."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    if not _NUMBER.fullmatch(raw):
        raise BadRequest(f"{name} must be a number written with the digits 0-9, e.g. "
                         f"{name}=100")
    number = float(raw)
    if abs(number) == float("inf"):
        raise BadRequest(f"{name} must be a finite number")
    if kind is int:
        exact = int64(raw.lstrip("+-"))  # digits only: exact, even beyond float's 2**53
        if exact is not None:
            return -exact if raw.startswith("-") else exact
        return max(-INT64_MAX - 1, min(int(number), INT64_MAX))
    return number


def points_arg(request: Any, default: int) -> int:
    """`points=`, the most points a chart route returns: `default` when absent or 0,
    at least 8 and at most `MAX_POINTS`."""
    return max(8, min(number_arg(request, "points") or default, MAX_POINTS))


def flag_arg(request: Any, name: str) -> bool:
    """Query argument `name` as a yes/no: 1/true/yes/on or 0/false/no/off (any case),
    False when absent or empty; else BadRequest."""
    raw = request.args.get(name) or ""
    flag = _FLAGS.get(raw.lower()) if raw.isascii() else None
    if flag is None:
        raise BadRequest(f"{name} must be 1 or 0 (or true/false, yes/no, on/off)")
    return flag
