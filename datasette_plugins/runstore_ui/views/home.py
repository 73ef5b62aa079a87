"""The run list as the home of a store.

- ``/<db>`` of a store redirects (302) to ``/<db>/run_list``: an ASGI wrapper, for a
  GET or HEAD of exactly the database's URL with no query string. Any query string
  (``/<db>?_tables=1``, linked from the run list's actions menu) still shows
  Datasette's database page with its tables, views and canned queries;
  ``/<db>.json``, ``/<db>?sql=...`` and every other URL are left alone.
- ``/`` redirects there too when the instance serves exactly one database and it is
  a store, so ``runstore ui`` (whose one-time sign-in link lands on ``/``) opens on
  the run list. With other databases attached, ``/`` stays Datasette's index.
- The run_list page is titled "Runs" (a store's metadata, `metadata`), without its
  ``CREATE VIEW`` SQL and the "(view)" suffix (template variables); runstore.css
  tidies the rest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .. import detect
from ..metadata import RUN_LIST

TABLES_ARG = "_tables"  # /<db>?_tables=1: the database page, not redirected


def run_list_url(datasette: Any, database: str) -> str:
    return str(datasette.urls.table(database, RUN_LIST))


def database_page_url(datasette: Any, database: str) -> str:
    """Datasette's database page of a store, past the redirect."""
    return f"{datasette.urls.database(database)}?{urlencode({TABLES_ARG: 1})}"


async def home_target(datasette: Any, path: str) -> str | None:
    """Where a bare GET of `path` should go instead, or None to serve it."""
    names = detect.user_databases(datasette)
    if path == datasette.urls.instance():
        if len(names) == 1 and await detect.is_store(datasette, names[0]):
            return run_list_url(datasette, names[0])
        return None
    for name in names:
        if path == datasette.urls.database(name):
            return run_list_url(datasette, name) if await detect.is_store(datasette, name) \
                else None
    return None


def redirect_home(app: Any, datasette: Any) -> Any:
    """Wrap an ASGI app with the redirects above."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope.get("method") in ("GET", "HEAD")
                and not scope.get("query_string")):
            target = await home_target(datasette, scope.get("path") or "")
            if target is not None:
                await send({
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", target.encode("latin-1")),
                                (b"content-length", b"0"),
                                (b"cache-control", b"no-store")],
                })
                await send({"type": "http.response.body", "body": b""})
                return
        await app(scope, receive, send)

    return wrapped


def run_list_template_vars() -> dict[str, Any]:
    """Template variables for the run_list page of a store: no view SQL and no
    "(view)" after the title."""
    return {"is_view": False, "view_definition": None}


def actions(datasette: Any, database: str) -> list[dict[str, str]]:
    """The run list's actions menu: Datasette's database page (tables, views, queries)."""
    return [{"href": database_page_url(datasette, database),
             "label": "Tables, views and canned queries"}]
