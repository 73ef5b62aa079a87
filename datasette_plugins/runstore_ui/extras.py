"""The run page beyond metric charts: media, system metrics and console output.

The run page template includes ``runstore_run_extras.html``, whose data comes from
this module's `extra_template_vars` hook (only for ``runstore_run.html``, which the
run view renders after its permission checks). Routes, under the run's URL:

- ``console.json?after=<seq>&limit=<n>``: console lines after `seq` (the page shows
  the first `CONSOLE_PAGE` and loads the rest on demand, or as a live run prints);
- ``system.json?after=<unix s>&points=<n>``: system metric series (time on x),
  M4-downsampled past `points` per key;
- ``media.json?key=<key>&step=<step>``: one media item (the newest at or before the
  step), for the page's step sliders.

Plus the blob route (`media.blob_view`). Every route checks, as the run page does,
that the actor may view the store's runs. Hook implementations here are imported
by the package's ``__init__`` (pluggy's ``specname`` lets them sit beside the
package's own implementations of the same hooks).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore._store import get_run_by_key
from runstore._store._run_extras import console_page, media_at, run_extras, system_series

from . import _cells
from ._access import INT64_MAX, RUN_PATH, store_and_key
from ._compat import database_from_route
from ._format import live_state
from ._static import static_url
from .media import BLOB_PATH, blob_view, shape

RUN_TEMPLATE = "runstore_run.html"
CONSOLE_PAGE = 500
CONSOLE_MORE = 2000
SYSTEM_POINTS = 2000
# ANSI escape sequences (colours, cursor moves) and other control characters but tab.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def line_text(line: str) -> str:
    """A console line as a terminal leaves it: what follows the last carriage return
    (progress bars redraw with \\r), without ANSI escapes or control characters."""
    if "\r" in line:
        parts = [p for p in line.split("\r") if p]
        line = parts[-1] if parts else ""
    return _CONTROL.sub("", _ANSI.sub("", line))


def _clock(at: Any) -> tuple[str, str]:
    """(HH:MM:SS, ISO with milliseconds), both UTC, of a unix time."""
    try:
        moment = datetime.fromtimestamp(float(at), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return "", ""
    return moment.strftime("%H:%M:%S"), moment.isoformat(timespec="milliseconds")


def console_rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Console lines as the page shows them: seq, stream, at, time, iso, text."""
    out = []
    for line in lines:
        time_text, iso = _clock(line["at"])
        out.append({"seq": line["seq"], "stream": line["stream"], "at": line["at"],
                    "time": time_text, "iso": iso, "text": line_text(line["line"])})
    return out


def _number_arg(request: Any, name: str, kind: type = int) -> Any:
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


def _run_or_404(conn: Any, run_key: int) -> dict[str, Any]:
    run = get_run_by_key(conn, run_key)
    if run is None:
        raise NotFound(f"No run with run_key {run_key}")
    return run


async def console_view(datasette: Any, request: Any) -> Response:
    """Console lines after `after` (seq), at most `limit`, with the run's liveness."""
    db, run_key = await store_and_key(datasette, request)
    after = _number_arg(request, "after")
    limit = _number_arg(request, "limit") or CONSOLE_MORE

    def read(conn: Any) -> dict[str, Any]:
        run = _run_or_404(conn, run_key)
        return {**console_page(conn, run_key, -1 if after is None else after, limit),
                "live": live_state(run)[1]}

    data = await db.execute_fn(read)
    data["lines"] = console_rows(data["lines"])
    return Response.json(data)


async def system_view(datasette: Any, request: Any) -> Response:
    """System metric series (after `after`, unix s), with the run's liveness."""
    db, run_key = await store_and_key(datasette, request)
    after = _number_arg(request, "after", float)
    points = _number_arg(request, "points") or SYSTEM_POINTS

    def read(conn: Any) -> dict[str, Any]:
        run = _run_or_404(conn, run_key)
        return {**system_series(conn, run_key, after, max(8, min(points, 20000))),
                "live": live_state(run)[1]}

    return Response.json(await db.execute_fn(read))


async def media_view(datasette: Any, request: Any) -> Response:
    """One media item of `key`: the newest at or before `step` (the newest without)."""
    db, run_key = await store_and_key(datasette, request)
    key = request.args.get("key")
    if not key:
        raise BadRequest("key= is required")
    step = _number_arg(request, "step")

    def read(conn: Any) -> dict[str, Any] | None:
        _run_or_404(conn, run_key)
        return media_at(conn, run_key, key, step)

    description = await db.execute_fn(read)
    if description is None:
        raise NotFound(f"No media for {key!r} at step {step}")
    return Response.json({"key": key,
                          "item": shape(description, datasette.urls.database(db.name))})


async def page_extras(datasette: Any, request: Any) -> dict[str, Any]:
    """Template variables of the extras on a run page: `runstore_extras`."""
    db = database_from_route(datasette, request.url_vars["database"])
    run_key = int(request.url_vars["run_key"])

    def read(conn: Any) -> dict[str, Any]:
        run = get_run_by_key(conn, run_key)
        live = live_state(run)[1] if run is not None else False
        return {**run_extras(conn, run_key, CONSOLE_PAGE), "live": live}

    data = await db.execute_fn(read)
    database_url = datasette.urls.database(db.name)
    run_url = _cells.run_url(database_url, run_key)
    media = [{"key": m["key"], "type": m["type"], "count": m["count"], "steps": m["steps"],
              "item": shape(m["latest"], database_url)} for m in data["media"]]
    console = data["console"]
    return {"runstore_extras": {
        "console": console_rows(console["lines"]),
        "console_total": console["total"],
        "console_remaining": console["remaining"],
        "system_keys": data["system_keys"],
        "media": media,
        "live": data["live"],
        "css_url": static_url(datasette, "runstore_extras.css"),
        "js_url": static_url(datasette, "runstore_extras.js"),
        "page_data": {
            "consoleUrl": f"{run_url}/console.json",
            "systemUrl": f"{run_url}/system.json",
            "mediaUrl": f"{run_url}/media.json",
            "live": data["live"],
            "lastSeq": console["last_seq"],
            "remaining": console["remaining"],
            "systemKeys": data["system_keys"],
            "media": media,
        },
    }}


@hookimpl(specname="register_routes")
def register_extras_routes(datasette: Any) -> list[tuple[str, Any]]:
    """console.json, system.json and media.json of a run; the blob route."""
    return [
        (RUN_PATH + r"/console\.json$", console_view),
        (RUN_PATH + r"/system\.json$", system_view),
        (RUN_PATH + r"/media\.json$", media_view),
        (BLOB_PATH, blob_view),
    ]


@hookimpl(specname="extra_template_vars")
def run_extras_template_vars(template: str, request: Any, datasette: Any) -> Any:
    """Console lines, system keys and media items for the run page's extras."""
    if template != RUN_TEMPLATE or request is None \
            or "run_key" not in (request.url_vars or {}):
        return {}

    async def inner() -> dict[str, Any]:
        return await page_extras(datasette, request)

    return inner
