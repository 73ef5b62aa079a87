"""The workspace's runs table: a project's view (``runs/<project>``, built by the store:
`runstore._store.refresh_workspace_views`) shown by Datasette's own table page, with its
filters, sort, facets, search, ``_col`` and CSV/JSON export.

- ``/<db>/-/runstore/workspace?project=P`` brings P's view up to date and redirects to
  its table page, keeping every other query argument (``_sort_desc=...``,
  ``config.optimizer__exact=adamw``, ``_search=...``): a bookmarkable filter.
- A visit straight to a project view's table page (a bookmark) brings it up to date too
  (`refresh_on_visit`, an ASGI wrapper), as does the plugin's startup hook.
- Views are DDL, so they are (re)built in Datasette's write thread, in one short
  transaction; a read-only or immutable store shows the views it has.
- Sorting a project view by a config or summary key gives the key an expression index
  first (`ensure_sort_index`, once per key), so the sorted page costs a page, not a pass
  over every run's JSON.
- Table options (facets, sort, search through `run_records_fts`, page size) come from
  `view_options`: the get_metadata hook on 0.65, configuration on 1.0 (`compat`).
"""

from __future__ import annotations

import weakref
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette.utils import tilde_decode
from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore._store import (
    RUN_SEARCH_TABLE,
    ensure_key_index,
    key_index_wanted,
    project_of_view,
    project_view_name,
    refresh_workspace_views,
    stale_projects,
    workspace_projects,
)

from . import compat, detect
from .access import store_db
from .metadata import RUN_LIST

PROJECT_ARG = "project"
# Shown in the actions menu of the run list; more projects are reached by its facet.
MAX_LISTED = 30
PAGE_SIZE = 25
SORT_ARGS = ("_sort", "_sort_desc")


def is_project_view(table: str | None) -> bool:
    return table is not None and project_of_view(table) is not None


def view_options(project: str) -> dict[str, Any]:
    """Datasette table options of a project view."""
    return {
        "title": f"Runs of {project}",
        # No default facets: each is a query over every run of the project (~80 ms at
        # 10,000 runs); "Facet by this" in a column's menu adds one, kept in the URL.
        "sort_desc": "created_at",
        "label_column": "name",
        "fts_table": RUN_SEARCH_TABLE,
        "fts_pk": "run_key",
        # 25 rows: about a 1440x900 window of compact rows, and half the HTML of 50 (a
        # page has a cell per run and key: 48 columns at 37 keys)
        "size": PAGE_SIZE,
    }


def view_options_of(view: str) -> dict[str, Any]:
    return view_options(project_of_view(view) or "")


# The column chooser's static files (the hooks bundle them: assets.bundle)
JS_FILES = ["runstore_columns.js"]
CSS_FILES = ["runstore_runs_table.css"]


# datasette -> {database: the project views ensure_views last saw}: 0.65's get_metadata
# hook (synchronous, asked without a table name) gives each of them its options.
_known: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def known_views(datasette: Any, database: str) -> list[str]:
    return _known.get(datasette, {}).get(database, [])


async def _configure(datasette: Any, database: str, views: list[str]) -> None:
    """Remember the views for get_metadata (0.65); on 1.0, put their options in
    configuration, where it reads them."""
    _known.setdefault(datasette, {})[database] = list(views)
    tables = {}
    for view in views:
        project = project_of_view(view)
        if project is not None:
            tables[view] = view_options(project)
    if tables:
        await compat.configure_store(datasette, database, {"tables": tables}, {})


async def ensure_views(datasette: Any, database: str, project: str | None = None) -> None:
    """Bring the project views of a store (or one project's) up to date: one read
    (`stale_projects`, a few ms at 10,000 runs) when nothing changed."""
    db = datasette.get_database(database)
    stale = await db.execute_fn(lambda conn: stale_projects(conn, project))
    if stale and db.is_mutable:
        try:
            await compat.execute_write_fn(
                db, lambda conn: refresh_workspace_views(conn, project))
        except Exception:  # locked past the timeout, read-only file: show what exists
            pass
    if stale or database not in _known.get(datasette, {}):
        names = await db.execute_fn(
            lambda conn: [p["view"] for p in workspace_projects(conn)])
        await _configure(datasette, database, names)


async def workspace_view(datasette: Any, request: Any) -> Response:
    """Redirect to a project's runs table, brought up to date, keeping the filter."""
    db = await store_db(datasette, request)
    project = request.args.get(PROJECT_ARG)
    if project is None:
        raise BadRequest("Say which project: /-/runstore/workspace?project=NAME")
    projects = await db.execute_fn(lambda conn: [p["project"] for p in workspace_projects(conn)])
    if project not in projects:
        raise NotFound(f"No runs in project {project[:200]!r}")
    await ensure_views(datasette, db.name, project)
    rest = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True)
            if k != PROJECT_ARG]
    view = project_view_name(project)
    if view not in await db.view_names():
        # a read-only store whose view was never built: the run list of the project
        rest = [(PROJECT_ARG, project), *rest]
        view = RUN_LIST
    url = datasette.urls.table(db.name, view)
    return Response.redirect(url + ("?" + urlencode(rest) if rest else ""))


def workspace_url(datasette: Any, database: str, project: str) -> str:
    return (f"{datasette.urls.database(database)}/-/runstore/workspace?"
            + urlencode({PROJECT_ARG: project}))


async def project_actions(datasette: Any, database: str) -> list[dict[str, str]]:
    """Links to each project's runs table (newest project first)."""
    db = datasette.get_database(database)
    projects = await db.execute_fn(workspace_projects)
    return [{"href": workspace_url(datasette, database, p["project"]),
             "label": f"Workspace: {p['project']} ({p['runs']} runs)"}
            for p in projects[:MAX_LISTED]]


async def ensure_sort_index(datasette: Any, database: str, project: str, column: str) -> None:
    """Before a project view is sorted by a config or summary key, give the key its
    expression index (`runstore._store._runs_table.ensure_key_index`: ~0.1 s once at
    10,000 runs, in the write thread; then the sorted page reads ~25 rows instead of
    every run's JSON). One read when it exists; nothing on a read-only store."""
    db = datasette.get_database(database)
    if not db.is_mutable:
        return
    if not await db.execute_fn(lambda conn: key_index_wanted(conn, project, column)):
        return
    try:
        await compat.execute_write_fn(db, lambda conn: ensure_key_index(conn, project, column))
    except Exception:  # locked past the timeout: sorted without the index
        pass


def _view_of_path(datasette: Any, database: str, path: str) -> str | None:
    """The table a path of a database's table pages names (``/<db>/runs~2Fp.json``)."""
    prefix = datasette.urls.database(database) + "/"
    if not path.startswith(prefix):
        return None
    segment = path[len(prefix):].split("/", 1)[0]
    if "." in segment:  # .json, .csv: a table's own dots are tilde-encoded
        segment = segment.rsplit(".", 1)[0]
    return tilde_decode(segment)


def _sorted_column(scope: dict[str, Any]) -> str | None:
    query = (scope.get("query_string") or b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in SORT_ARGS and value:
            return value
    return None


def _without_suggestions(scope: dict[str, Any]) -> dict[str, Any]:
    """The request with ``_nosuggest=1``: Datasette would otherwise try one facet query
    per column to suggest facets, and a project view has a column per key (seconds on
    10,000 runs). Facets stay one click away in each column's menu."""
    query = scope.get("query_string") or b""
    if b"_nosuggest=" in query:
        return scope
    return dict(scope, query_string=(query + b"&" if query else b"") + b"_nosuggest=1")


def _is_run_list_page(path: str, base: str) -> bool:
    """``/<db>/run_list`` or ``/<db>/runs`` (and their .json/.csv)."""
    name = path[len(base):] if path.startswith(base) else ""
    return name.rsplit(".", 1)[0] in ("run_list", "runs")


def refresh_on_visit(app: Any, datasette: Any) -> Any:
    """Wrap an ASGI app: a GET of a project view's pages (``/<db>/runs~2F<project>``,
    also .json/.csv) first brings the store's stale views up to date, and asks
    Datasette not to suggest facets there (`_without_suggestions`); nor on run_list and
    runs, whose facets the store declares (suggestions cost ~0.5 s at 10,000 runs)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            path = scope.get("path") or ""
            for name in detect.user_databases(datasette):
                base = datasette.urls.database(name) + "/"
                if (_is_run_list_page(path, base)
                        and await detect.is_store(datasette, name)):
                    scope = _without_suggestions(scope)  # its facets are declared
                    break
                prefix = base + "runs~2F"
                if path.startswith(prefix) and await detect.is_store(datasette, name):
                    await ensure_views(datasette, name)
                    column = _sorted_column(scope)
                    view = _view_of_path(datasette, name, path) if column else None
                    project = project_of_view(view) if view else None
                    if column and project is not None:
                        await ensure_sort_index(datasette, name, project, column)
                    scope = _without_suggestions(scope)
                    break
        await app(scope, receive, send)

    return wrapped
