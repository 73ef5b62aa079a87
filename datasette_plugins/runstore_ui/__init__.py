"""runstore's Datasette plugin: readable run tables, run pages with charts.

It acts only on databases that are runstore stores (they have the `runs`,
`metric_keys` and `history` tables) and leaves every other database alone.

It implements the hooks of both Datasette lines: `get_metadata`, `canned_queries`
and `permission_allowed` serve 0.65; `register_actions` and
`permission_resources_sql` serve the 1.0 alphas, where the startup hook puts table
options and canned queries in configuration and stored queries (`compat`). Each
line calls only the hooks it defines.

Layout: hooks here, one implementation each; every route in `routes.ROUTES`; the
pages and JSON routes in `views/`; what they share beside them (`access`: the checks
every route makes first; `cells`, `format`, `markdown`: display; `security`: who may
edit and which Host headers are served; `compat`: the Datasette 0.65/1.0 differences).
No module is public API, so none is underscored, as in Datasette itself. Two seams
are declared and tested (tests/test_package.py): the plugin imports runstore only
through `runstore._store` and public `runstore` names, and runstore imports only
`serve` (for `runstore ui`) from the plugin.
"""

from __future__ import annotations

import functools
from typing import Any

from datasette import hookimpl

from runstore._store import canned_queries as store_queries

from . import cells, compat, detect, runs_table, security, workspace_charts
from .assets import bundle_url
from .metadata import metadata_for
from .routes import ROUTES
from .views import compare, home, sweep


@hookimpl
def startup(datasette: Any) -> Any:
    """Find which attached databases are stores before the first request (which, on
    1.0, configures their tables, titles and canned queries)."""
    compat.guard_rich_tracebacks()

    async def inner() -> None:
        for name in detect.user_databases(datasette):
            if await detect.is_store(datasette, name):
                await runs_table.ensure_views(datasette, name)  # each project's runs table

    return inner


@hookimpl
def get_metadata(datasette: Any, key: Any, database: Any, table: Any) -> dict[str, Any]:
    """Facets, sort order and titles for the run tables of every store (0.65)."""
    if database is not None:
        names = [database] if detect.is_store_sync(datasette, database) else []
    else:
        names = detect.store_names(datasette)
    metadata = metadata_for(names) if names else {}
    for name in names:  # each project's runs table (runs/<project>)
        tables = metadata["databases"][name]["tables"]
        for view in runs_table.known_views(datasette, name):
            tables[view] = runs_table.view_options_of(view)
    return metadata


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    """Every page and JSON route of the plugin: the table in `routes`."""
    return list(ROUTES)


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """Run names as links, states as badges, tags as chips, summaries as pairs."""
    if table is None and column == "run_key" and type(value) is int:
        return compare.query_run_link(datasette, database, value)  # query results
    if table is None or (not cells.is_run_table(table) and column != "run_key"):
        return None
    if not cells.is_run_table(table) and table not in cells.LINKED_TABLES:
        return None
    if not cells.renders(table, column, value):  # most key columns: Datasette's own cell
        return None

    async def inner() -> Any:
        if not await detect.is_store(datasette, database):
            return None
        if cells.is_key_column(table, column):  # a project view's key: no URL needed
            return cells.project_view_cell(value, column)
        database_url, table_url = _urls(datasette, database, table)
        html = cells.render(row, value, column, table, database_url, table_url)
        if html is not None and column == "name" and cells.is_run_table(table):
            html = compare.pick_box(database_url, row["run_key"]) + html  # compare checkbox
        return html

    return inner


@functools.lru_cache(maxsize=256)
def _urls(datasette: Any, database: str, table: str) -> tuple[str, str]:
    """The database's and table's URLs, made once, not for each of a page's cells (a
    fifth of a 50-row page's time)."""
    return datasette.urls.database(database), datasette.urls.table(database, table)


@hookimpl
def extra_css_urls(
    database: str | None, table: str | None, view_name: str, datasette: Any
) -> Any:
    """Our stylesheet on the pages of a store (and the workspace charts' on tables of runs)."""

    async def inner() -> list[str]:
        if database and await detect.is_store(datasette, database):
            files = ["runstore.css", "runstore_compare.css"]
            if await workspace_charts.shows_runs(datasette, database, table, view_name):
                files += workspace_charts.CSS_FILES
            if runs_table.is_project_view(table):
                files += runs_table.CSS_FILES
            return [bundle_url(datasette, database, files, "css")]
        return []

    return inner


@hookimpl
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> Any:
    """runstore-edit (editing name, tags, notes): root only, nobody when read-only (0.65)."""
    return security.edit_allowed(actor, action, datasette)


@hookimpl
def register_actions(datasette: Any) -> list[Any]:
    """The runstore-edit action, on a database (1.0)."""
    return compat.database_actions({security.EDIT_PERMISSION: security.EDIT_DESCRIPTION})


@hookimpl
def permission_resources_sql(datasette: Any, actor: Any, action: str) -> Any:
    """runstore-edit as a rule: root only, nobody when read-only (1.0)."""
    answer = security.edit_allowed(actor, action, datasette)
    reason = "runstore: root may edit runs" if answer else "runstore: this UI is read-only"
    return compat.permission_rule(answer, reason)


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """Outside in: 421 for a Host header the server does not serve (when `runstore ui`
    says which), then /<db> of a store (and / when it is the only database) redirects
    to its run list (`views.home`). The Host check comes first, so a misdirected
    request is never redirected."""
    host_check = security.wrap_app(datasette)
    return lambda app: host_check(home.redirect_home(
        runs_table.refresh_on_visit(app, datasette), datasette))


@hookimpl
def extra_js_urls(
    database: str | None, table: str | None, view_name: str, datasette: Any
) -> Any:
    """The "Compare selected" button on the run tables of a store; the workspace charts
    above every table of runs (`workspace_charts`)."""

    async def inner() -> list[str]:
        charts = await workspace_charts.shows_runs(datasette, database, table, view_name)
        files = list(workspace_charts.JS_FILES) if charts else []
        if (view_name in ("table", "row") and cells.is_run_table(table)
                and await detect.is_store(datasette, database)):
            columns = runs_table.JS_FILES if runs_table.is_project_view(table) else []
            files = ["runstore_pick.js", *columns, *files]
        return [bundle_url(datasette, database, files, "js")] if files and database else []

    return inner


@hookimpl
def canned_queries(datasette: Any, database: str, actor: Any) -> Any:
    """The common questions as canned queries, on every store (0.65)."""

    async def inner() -> dict[str, Any]:
        return store_queries() if await detect.is_store(datasette, database) else {}

    return inner


@hookimpl
def extra_template_vars(
    template: str, database: str | None, table: str | None, view_name: str, datasette: Any
) -> Any:
    """The run_list page without its CREATE VIEW SQL and "(view)" suffix."""

    async def inner() -> dict[str, Any]:
        if view_name == "table" and table == home.RUN_LIST \
                and await detect.is_store(datasette, database):
            return home.run_list_template_vars()
        return {}

    return inner


def _run_list_actions(datasette: Any, database: str, table: str, request: Any) -> Any:
    async def inner() -> list[dict[str, str]]:
        if table == home.RUN_LIST and await detect.is_store(datasette, database):
            return home.actions(datasette, database) + await sweep.sweep_actions(
                datasette, database, request) + await runs_table.project_actions(
                datasette, database)
        return []

    return inner


@hookimpl
def table_actions(datasette: Any, actor: Any, database: str, table: str, request: Any) -> Any:
    """On the run list (a view; 0.65 asks this hook for views too): a link to the
    database page, which /<db> no longer shows, and to the sweeps (of the project the
    list is filtered to)."""
    return _run_list_actions(datasette, database, table, request)


@hookimpl
def view_actions(datasette: Any, actor: Any, database: str, view: str, request: Any) -> Any:
    """The same links, where views have their own hook (1.0)."""
    return _run_list_actions(datasette, database, view, request)


@hookimpl(specname="top_table")
def top_table(datasette: Any, request: Any, database: str, table: str) -> Any:
    """Above the run list, links to the sweeps (of the project it is filtered to; 1.0
    only: 0.65 has no such hook and lists them in the actions menu)."""

    async def inner() -> str:
        if table == home.RUN_LIST and await detect.is_store(datasette, database):
            return await sweep.sweeps_box(datasette, database, request)
        return ""

    return inner
