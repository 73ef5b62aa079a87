"""The run page beyond metric charts: media, system metrics and console output.

The run page template includes ``runstore_run_extras.html``, whose data the run view
takes from `page_extras`. Routes, under the run's URL:

- ``console.json?after=<seq>&limit=<n>``: console lines after `seq` (the page shows
  the first `CONSOLE_PAGE` and loads the rest on demand, or as a live run prints);
- ``system.json?after=<unix s>&points=<n>``: system metric series (time on x),
  M4-downsampled past `points` per key;
- ``media.json?key=<key>&step=<step>``: one media item (the newest at or before the
  step), for the page's step sliders.

Plus the blob route (`media.blob_view`). Every route checks, as the run page does,
that the actor may view the store's runs. The routes' hook implementation here is
imported by the package's ``__init__`` (pluggy's ``specname`` lets it sit beside the
package's own implementation of the same hook).
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
from ._access import RUN_PATH, number_arg, points_arg, store_and_key
from ._format import live_state
from ._static import static_url
from .media import BLOB_PATH, blob_view, shape

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


def _run_or_404(conn: Any, run_key: int) -> dict[str, Any]:
    run = get_run_by_key(conn, run_key)
    if run is None:
        raise NotFound(f"No run with run_key {run_key}")
    return run


async def console_view(datasette: Any, request: Any) -> Response:
    """Console lines after `after` (seq), at most `limit`, with the run's liveness."""
    db, run_key = await store_and_key(datasette, request)
    after = number_arg(request, "after")
    limit = number_arg(request, "limit") or CONSOLE_MORE

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
    after = number_arg(request, "after", float)
    points = points_arg(request, SYSTEM_POINTS)

    def read(conn: Any) -> dict[str, Any]:
        run = _run_or_404(conn, run_key)
        return {**system_series(conn, run_key, after, points),
                "live": live_state(run)[1]}

    return Response.json(await db.execute_fn(read))


async def media_view(datasette: Any, request: Any) -> Response:
    """One media item of `key`: the newest at or before `step` (the newest without)."""
    db, run_key = await store_and_key(datasette, request)
    key = request.args.get("key")
    if not key:
        raise BadRequest("key= is required")
    step = number_arg(request, "step")

    def read(conn: Any) -> dict[str, Any] | None:
        _run_or_404(conn, run_key)
        return media_at(conn, run_key, key, step)

    description = await db.execute_fn(read)
    if description is None:
        raise NotFound(f"No media for {key!r} at step {step}")
    return Response.json({"key": key,
                          "item": shape(description, datasette.urls.database(db.name))})


async def page_extras(datasette: Any, db: Any, run_key: int, live: bool) -> dict[str, Any]:
    """Template variables of the extras on the page of run `run_key` (`live`: its
    liveness, which the run view has): `runstore_extras`."""
    data = await db.execute_fn(lambda conn: run_extras(conn, run_key, CONSOLE_PAGE))
    data["live"] = live
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

