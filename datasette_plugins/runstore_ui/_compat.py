"""The few Datasette calls whose shape differs between 0.65 and the 1.0 alphas."""

from __future__ import annotations

from typing import Any

from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound


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
