"""runstore's Datasette plugin: readable run tables, run pages with charts.

It acts only on databases that are runstore stores (they have the `runs`,
`metric_keys` and `history` tables) and leaves every other database alone.
"""

from __future__ import annotations

from typing import Any

from datasette import hookimpl

from . import _cells, _detect
from ._metadata import metadata_for
from ._static import static_url
from .views import RUN_PATH, metric_view, run_view


@hookimpl
def startup(datasette: Any) -> Any:
    """Find which attached databases are stores before the first request."""

    async def inner() -> None:
        for name in list(datasette.databases):
            if name != "_internal":
                await _detect.is_store(datasette, name)

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
    """The run page and its chart-data route."""
    return [
        (RUN_PATH + r"$", run_view),
        (RUN_PATH + r"/metric\.json$", metric_view),
    ]


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """Run names as links, states as badges, tags as chips, summaries as pairs."""
    if table is None or (table not in _cells.RUN_TABLES and column != "run_key"):
        return None
    if table not in _cells.RUN_TABLES | _cells.LINKED_TABLES:
        return None

    async def inner() -> Any:
        if not await _detect.is_store(datasette, database):
            return None
        database_url = datasette.urls.database(database)
        return _cells.render(
            row, value, column, table, database_url, datasette.urls.table(database, table)
        )

    return inner


@hookimpl
def extra_css_urls(database: str | None, datasette: Any) -> Any:
    """Our stylesheet on the pages of a store."""

    async def inner() -> list[str]:
        if database and await _detect.is_store(datasette, database):
            return [static_url(datasette, "runstore.css")]
        return []

    return inner
