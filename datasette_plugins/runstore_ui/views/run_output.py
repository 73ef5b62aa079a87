"""The run's output beyond metric charts, on its page and as JSON: media, system
metrics and console output (written by `runstore._store`'s `_run_output`).

The run page template includes ``runstore_run_output.html``, whose data the run view
takes from `page_context`. Routes, under the run's URL (`routes.ROUTES`):

- ``console.json?after=<seq>&limit=<n>``: console lines after `seq` (the page shows
  the first `CONSOLE_PAGE` and loads the rest on demand, or as a live run prints);
- ``system.json?after=<unix s>&points=<n>``: system metric series (time on x),
  M4-downsampled past `points` per key;
- ``media.json?key=<key>&step=<step>``: one media item (the newest at or before the
  step), for the page's step sliders.

The files media show come from the blob route (`media.blob_view`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypedDict

from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore._store import console_page, get_run_by_key, media_at, run_output, system_series

from .. import cells
from ..access import number_arg, points_arg, store_and_key
from ..assets import static_url
from ..format import live_state
from .media import MediaItem, shape

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


class ConsoleLine(TypedDict):
    """One console line as console.json and the page give it."""

    seq: int
    stream: str  # "stdout" or "stderr"
    at: float  # unix s
    time: str  # HH:MM:SS, UTC
    iso: str  # ISO 8601 with milliseconds, UTC
    text: str  # as a terminal leaves it: no ANSI escapes, the last \r's redraw


class ConsoleAnswer(TypedDict):
    """console.json: the lines after `after`, and whether to go on polling."""

    lines: list[ConsoleLine]
    total: int  # lines of the run
    remaining: int  # after these
    last_seq: int  # of these, or `after` when there are none
    live: bool


class SystemSeries(TypedDict):
    """One system metric's samples (M4-downsampled when there are more than `points`)."""

    at: list[float]  # unix s
    values: list[float | None]  # None: a non-finite sample
    total: int
    downsampled: bool


class SystemAnswer(TypedDict):
    """system.json: every system metric's samples after `after`."""

    series: dict[str, SystemSeries]
    last_at: float | None
    live: bool


class MediaAnswer(TypedDict):
    """media.json: one media item of `key`."""

    key: str
    item: MediaItem


def console_rows(lines: list[dict[str, Any]]) -> list[ConsoleLine]:
    """Console lines as the page shows them: seq, stream, at, time, iso, text."""
    out: list[ConsoleLine] = []
    for line in lines:
        time_text, iso = _clock(line["at"])
        out.append({"seq": line["seq"], "stream": line["stream"], "at": line["at"],
                    "time": time_text, "iso": iso, "text": line_text(line["line"])})
    return out


def _run_or_404(conn: Any, run_key: int) -> Mapping[str, Any]:
    run = get_run_by_key(conn, run_key)
    if run is None:
        raise NotFound(f"No run with run_key {run_key}")
    return run


async def console_view(datasette: Any, request: Any) -> Response:
    """Console lines after `after` (seq), at most `limit`, with the run's liveness."""
    db, run_key = await store_and_key(datasette, request)
    after = number_arg(request, "after")
    limit = number_arg(request, "limit") or CONSOLE_MORE

    def read(conn: Any) -> ConsoleAnswer:
        run = _run_or_404(conn, run_key)
        page = console_page(conn, run_key, -1 if after is None else after, limit)
        return {"lines": console_rows(page["lines"]), "total": page["total"],
                "remaining": page["remaining"], "last_seq": page["last_seq"],
                "live": live_state(run)[1]}

    answer: ConsoleAnswer = await db.execute_fn(read)
    return Response.json(answer)


async def system_view(datasette: Any, request: Any) -> Response:
    """System metric series (after `after`, unix s), with the run's liveness."""
    db, run_key = await store_and_key(datasette, request)
    after = number_arg(request, "after", float)
    points = points_arg(request, SYSTEM_POINTS)

    def read(conn: Any) -> SystemAnswer:
        run = _run_or_404(conn, run_key)
        series = system_series(conn, run_key, after, points)
        return {"series": series["series"], "last_at": series["last_at"],
                "live": live_state(run)[1]}

    answer: SystemAnswer = await db.execute_fn(read)
    return Response.json(answer)


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
    answer: MediaAnswer = {"key": key,
                           "item": shape(description, datasette.urls.database(db.name))}
    return Response.json(answer)


async def page_context(datasette: Any, db: Any, run_key: int, live: bool) -> dict[str, Any]:
    """Template variables of the output sections on the page of run `run_key` (`live`:
    its liveness, which the run view has): `run_output`."""
    data = await db.execute_fn(lambda conn: run_output(conn, run_key, CONSOLE_PAGE))
    database_url = datasette.urls.database(db.name)
    run_url = cells.run_url(database_url, run_key)
    media = [{"key": m["key"], "type": m["type"], "count": m["count"], "steps": m["steps"],
              "item": shape(m["latest"], database_url)} for m in data["media"]]
    console = data["console"]
    return {"run_output": {
        "console": console_rows(console["lines"]),
        "console_total": console["total"],
        "console_remaining": console["remaining"],
        "system_keys": data["system_keys"],
        "media": media,
        "live": live,
        "css_url": static_url(datasette, "runstore_run_output.css"),
        "js_url": static_url(datasette, "runstore_run_output.js"),
        "page_data": {
            "consoleUrl": f"{run_url}/console.json",
            "systemUrl": f"{run_url}/system.json",
            "mediaUrl": f"{run_url}/media.json",
            "live": live,
            "lastSeq": console["last_seq"],
            "remaining": console["remaining"],
            "systemKeys": data["system_keys"],
            "media": media,
        },
    }}
