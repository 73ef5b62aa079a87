"""runstore's Datasette plugin: readable run tables, run pages with charts.

It acts only on databases that are runstore stores (they have the `runs`,
`metric_keys` and `history` tables) and leaves every other database alone.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl

from . import _cells, _compat, _detect, _security, compare
from ._edit import edit_view
from ._metadata import metadata_for
from ._static import static_url
from .views import RUN_PATH, metric_view, run_view


@hookimpl
def startup(datasette: Any) -> Any:
    """Find which attached databases are stores before the first request (and give
    them their canned queries where Datasette stores queries)."""

    async def inner() -> None:
        for name in list(datasette.databases):
            if name != "_internal" and await _detect.is_store(datasette, name):
                await _compat.add_stored_queries(datasette, name, compare.queries())

    return inner


@hookimpl
def get_metadata(datasette: Any, key: Any, database: Any, table: Any) -> dict[str, Any]:
    """Facets and sort order for the run tables of every store."""
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
    """runstore-edit (editing name, tags, notes): root only, nobody when read-only."""
    return _security.edit_allowed(actor, action, datasette)


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
    """The common questions as canned queries, on every store."""

    async def inner() -> dict[str, Any]:
        return compare.queries() if await _detect.is_store(datasette, database) else {}

    return inner
