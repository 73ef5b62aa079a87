"""runstore's Datasette plugin: readable run tables, run pages with charts.

It acts only on databases that are runstore stores (they have the `runs`,
`metric_keys` and `history` tables) and leaves every other database alone.

It implements the hooks of both Datasette lines: `get_metadata`, `canned_queries`
and `permission_allowed` serve 0.65; `register_actions` and
`permission_resources_sql` serve the 1.0 alphas, where the startup hook puts table
options and canned queries in configuration and stored queries (`_compat`). Each
line calls only the hooks it defines.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl

from runstore._store import canned_queries as store_queries

from . import _cells, _compat, _detect, _home, _security, compare
from ._access import RUN_PATH
from ._edit import edit_view
from ._metadata import metadata_for
from ._static import static_url

# The routes of console, system metrics, media and blobs: a hook implementation of
# its own (specname) in `extras`, registered with this module.
from .extras import register_extras_routes  # noqa: F401
from .views import metric_view, run_view, status_view


@hookimpl
def startup(datasette: Any) -> Any:
    """Find which attached databases are stores before the first request (which, on
    1.0, configures their tables, titles and canned queries)."""

    async def inner() -> None:
        for name in _detect.user_databases(datasette):
            await _detect.is_store(datasette, name)

    return inner


@hookimpl
def get_metadata(datasette: Any, key: Any, database: Any, table: Any) -> dict[str, Any]:
    """Facets, sort order and titles for the run tables of every store (0.65)."""
    if database is not None:
        names = [database] if _detect.is_store_sync(datasette, database) else []
    else:
        names = _detect.store_names(datasette)
    return metadata_for(names) if names else {}


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    """The run page, its chart-data route and its edit route."""
    return [
        (RUN_PATH + r"$", run_view),
        (RUN_PATH + r"/metric\.json$", metric_view),
        (RUN_PATH + r"/edit$", edit_view),
        (compare.COMPARE_PATH, compare.compare_view),
    ]


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """Run names as links, states as badges, tags as chips, summaries as pairs."""
    if table is None and column == "run_key" and type(value) is int:
        return compare.query_run_link(datasette, database, value)  # query results
    if table is None or (table not in _cells.RUN_TABLES and column != "run_key"):
        return None
    if table not in _cells.RUN_TABLES | _cells.LINKED_TABLES:
        return None

    async def inner() -> Any:
        if not await _detect.is_store(datasette, database):
            return None
        database_url = datasette.urls.database(database)
        html = _cells.render(
            row, value, column, table, database_url, datasette.urls.table(database, table)
        )
        if html is not None and column == "name" and table in _cells.RUN_TABLES:
            html = compare.pick_box(database_url, row["run_key"]) + html  # compare checkbox
        return html

    return inner


@hookimpl
def extra_css_urls(database: str | None, datasette: Any) -> Any:
    """Our stylesheet on the pages of a store."""

    async def inner() -> list[str]:
        if database and await _detect.is_store(datasette, database):
            return [static_url(datasette, "runstore.css"),
                    static_url(datasette, "runstore_compare.css")]
        return []

    return inner


@hookimpl
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> Any:
    """runstore-edit (editing name, tags, notes): root only, nobody when read-only (0.65)."""
    return _security.edit_allowed(actor, action, datasette)


@hookimpl
def register_actions(datasette: Any) -> list[Any]:
    """The runstore-edit action, on a database (1.0)."""
    return _compat.database_actions({_security.EDIT_PERMISSION: _security.EDIT_DESCRIPTION})


@hookimpl
def permission_resources_sql(datasette: Any, actor: Any, action: str) -> Any:
    """runstore-edit as a rule: root only, nobody when read-only (1.0)."""
    answer = _security.edit_allowed(actor, action, datasette)
    reason = "runstore: root may edit runs" if answer else "runstore: this UI is read-only"
    return _compat.permission_rule(answer, reason)


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """421 for a Host header the server does not serve, when `runstore ui` says which."""
    return _security.wrap_app(datasette)


@hookimpl
def extra_js_urls(
    database: str | None, table: str | None, view_name: str, datasette: Any
) -> Any:
    """The "Compare selected" button on the run tables of a store."""

    async def inner() -> list[str]:
        if view_name not in ("table", "row") or table not in _cells.RUN_TABLES:
            return []
        if await _detect.is_store(datasette, database):
            return [static_url(datasette, "runstore_pick.js")]
        return []

    return inner


@hookimpl
def canned_queries(datasette: Any, database: str, actor: Any) -> Any:
    """The common questions as canned queries, on every store (0.65)."""

    async def inner() -> dict[str, Any]:
        return store_queries() if await _detect.is_store(datasette, database) else {}

    return inner


# The run list as the home of a store, and the status route of live run pages
# (`_home`, `views`). Separate implementations (pluggy's specname) of hooks above.


@hookimpl(specname="register_routes")
def register_status_route(datasette: Any) -> list[tuple[str, Any]]:
    """The status route a live run page polls."""
    return [(RUN_PATH + r"/status\.json$", status_view)]


@hookimpl(specname="asgi_wrapper", tryfirst=True)
def home_redirect_wrapper(datasette: Any) -> Any:
    """/<db> of a store (and / when it is the only database) redirects to its run
    list. tryfirst: applied first, so inside the Host check."""
    return lambda app: _home.redirect_home(app, datasette)


@hookimpl
def extra_template_vars(
    template: str, database: str | None, table: str | None, view_name: str, datasette: Any
) -> Any:
    """The run_list page without its CREATE VIEW SQL and "(view)" suffix."""

    async def inner() -> dict[str, Any]:
        if view_name == "table" and table == _home.RUN_LIST \
                and await _detect.is_store(datasette, database):
            return _home.run_list_template_vars()
        return {}

    return inner


def _run_list_actions(datasette: Any, database: str, table: str) -> Any:
    async def inner() -> list[dict[str, str]]:
        if table == _home.RUN_LIST and await _detect.is_store(datasette, database):
            return _home.actions(datasette, database)
        return []

    return inner


@hookimpl
def table_actions(datasette: Any, actor: Any, database: str, table: str) -> Any:
    """On the run list (a view; 0.65 asks this hook for views too): a link to the
    database page, which /<db> no longer shows."""
    return _run_list_actions(datasette, database, table)


@hookimpl
def view_actions(datasette: Any, actor: Any, database: str, view: str) -> Any:
    """The same link, where views have their own hook (1.0)."""
    return _run_list_actions(datasette, database, view)
