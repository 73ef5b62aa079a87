"""The few Datasette calls whose shape differs between 0.65 and the 1.0 alphas."""

from __future__ import annotations

from typing import Any

from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound

from ._security import PLUGIN


def database_from_route(datasette: Any, route: str) -> Any:
    """The Database served under URL segment `route`, or NotFound."""
    decoded = tilde_decode(route)
    try:
        return datasette.get_database(route=decoded)
    except KeyError:
        raise NotFound(f"Database not found: {decoded}") from None


async def ensure_can_view_runs(datasette: Any, request: Any, database: str) -> None:
    """Raise Forbidden unless the actor may view the `runs` table of `database`,
    with the same cascade (table, database, instance) Datasette's table page uses."""
    await datasette.ensure_permissions(
        request.actor,
        [("view-table", (database, "runs")), ("view-database", database), "view-instance"],
    )


def datasette_options(metadata: dict[str, Any], plugin_config: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for Datasette(...) giving this plugin `plugin_config`: in
    `config=` on the 1.0 alphas (which have that argument), in metadata on 0.65."""
    import inspect

    from datasette.app import Datasette

    plugins = {"plugins": {PLUGIN: plugin_config}}
    if "config" in inspect.signature(Datasette).parameters:
        return {"metadata": metadata, "config": plugins}
    return {"metadata": {**metadata, **plugins}}


async def add_stored_queries(datasette: Any, database: str, queries: dict[str, Any]) -> None:
    """Register canned queries on the 1.0 alphas that replaced the `canned_queries`
    hook with stored queries (`datasette.add_query`); a no-op where the hook serves."""
    add_query = getattr(datasette, "add_query", None)
    if add_query is None:
        return
    for name, query in queries.items():
        # Trusted, as queries from configuration are: read-only SQL any viewer may run.
        await add_query(
            database, name, query["sql"], title=query.get("title"),
            description=query.get("description"), parameters=query.get("params"),
            is_trusted=True, source="plugin",
        )
