"""Every Datasette call whose shape differs between 0.65 and the 1.0 alphas.

Features are detected (hasattr, a signature, an importable module), not versions:

- permissions: 0.65 asks `permission_allowed` hooks with (actor, action, resource);
  1.0 has actions registered by `register_actions`, granted by
  `permission_resources_sql` rules and checked with `datasette.allowed(...)`.
- table options (facets, sort, label column): 0.65 takes them from the
  `get_metadata` hook; 1.0 reads them from configuration (`datasette.config`).
- titles and descriptions: the same hook on 0.65; 1.0 keeps them in the metadata
  tables of its internal database.
- canned queries: 0.65 asks the `canned_queries` hook; 1.0 stores queries
  (`datasette.add_query`).
- write transactions: 1.0's `execute_write_fn` wraps the function in a
  transaction unless told not to; the store opens its own, as on 0.65.
- plugin configuration: `Datasette(config=...)` on 1.0, metadata on 0.65.
- and one bug both lines share: with `rich` installed every 404 became a 500
  (`guard_rich_tracebacks`).

CSRF needs nothing here: 0.65 checks a token (asgi-csrf), 1.0 the Sec-Fetch-Site
and Origin headers, both before a POST reaches the edit route; the templates'
`csrftoken()` exists on both. Hook implementations take the arguments the two
hook specs share.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from datasette.utils import tilde_decode
from datasette.utils.asgi import NotFound

try:  # the 1.0 alphas' permission system
    from datasette.permissions import Action, PermissionSQL
    from datasette.resources import DatabaseResource, TableResource
except ImportError:  # 0.65
    Action = PermissionSQL = DatabaseResource = TableResource = None


def guard_rich_tracebacks() -> None:
    """Keep a 404 a 404 when `rich` is installed (transformers and Keras bring it).

    Datasette's default exception handler prints every exception it handles with
    `rich.get_console().print_exception()` when rich is importable, and it handles a URL no
    route matches outside any `except:` block, where rich raises ValueError: the 404 page
    became a 500 (both lines, 0.65.5 and 1.0a41). This prints only when an exception is
    being handled, which is what rich can print."""
    import sys

    try:
        from datasette import handle_exception as module
    except ImportError:
        return
    rich = getattr(module, "rich", None)
    if rich is None or isinstance(rich, _InFlightOnly):
        return

    module.rich = _InFlightOnly(rich, sys.exc_info)


class _InFlightOnly:
    """`rich` as datasette.handle_exception uses it, printing only inside `except:`."""

    def __init__(self, rich: Any, exc_info: Any) -> None:
        self._rich, self._exc_info = rich, exc_info

    def get_console(self) -> Any:
        return self

    def print_exception(self, **kwargs: Any) -> None:
        if self._exc_info()[0] is not None:
            self._rich.get_console().print_exception(**kwargs)


# Table metadata (not configuration) on 1.0: kept in its internal database.
_METADATA_KEYS = ("title", "description")


def database_from_route(datasette: Any, route: str) -> Any:
    """The Database served under URL segment `route`, or NotFound."""
    decoded = tilde_decode(route)
    try:
        return datasette.get_database(route=decoded)
    except KeyError:
        raise NotFound(f"Database not found: {decoded}") from None


async def ensure_can_view_runs(datasette: Any, request: Any, database: str) -> None:
    """Raise Forbidden unless the actor may view the `runs` table of `database`,
    checked as Datasette's own table page checks it."""
    if hasattr(datasette, "ensure_permission"):  # 1.0: view-table covers its parents
        await datasette.ensure_permission(
            action="view-table", resource=TableResource(database, "runs"), actor=request.actor
        )
        return
    await datasette.ensure_permissions(  # 0.65: the cascade table, database, instance
        request.actor,
        [("view-table", (database, "runs")), ("view-database", database), "view-instance"],
    )


async def database_permission(datasette: Any, actor: Any, action: str, database: str) -> bool:
    """True if `actor` may do `action` (one of this plugin's) on `database`."""
    if hasattr(datasette, "allowed"):
        return await datasette.allowed(
            action=action, resource=DatabaseResource(database), actor=actor
        )
    return bool(await datasette.permission_allowed(actor, action, resource=database,
                                                   default=False))


def database_actions(actions: dict[str, str]) -> list[Any]:
    """1.0's `register_actions` answer: {name: description} as actions on a database."""
    if Action is None:
        return []
    return [Action(name=name, abbr=None, description=description,
                   resource_class=DatabaseResource) for name, description in actions.items()]


def permission_rule(answer: bool | None, reason: str) -> Any:
    """1.0's `permission_resources_sql` answer for a `permission_allowed`-style
    answer (True, False, None: no opinion), as a rule for every resource."""
    if answer is None or PermissionSQL is None:
        return None
    return PermissionSQL.allow(reason=reason) if answer else PermissionSQL.deny(reason=reason)


async def execute_write_fn(db: Any, fn: Any) -> Any:
    """`fn(conn)` in Datasette's write thread; `fn` manages its own transaction (1.0
    would otherwise wrap it in one)."""
    if "transaction" in inspect.signature(db.execute_write_fn).parameters:
        return await db.execute_write_fn(fn, transaction=False)
    return await db.execute_write_fn(fn)


def datasette_options(metadata: dict[str, Any], plugins: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for Datasette(...) with `plugins` ({plugin: its config}): in
    `config=` on the 1.0 alphas (which have that argument), in metadata on 0.65."""
    from datasette.app import Datasette

    plugins = {"plugins": plugins}
    if "config" in inspect.signature(Datasette).parameters:
        return {"metadata": metadata, "config": plugins}
    return {"metadata": {**metadata, **plugins}}


async def configure_store(datasette: Any, database: str, metadata: dict[str, Any],
                          queries: dict[str, Any]) -> None:
    """On 1.0, give a store what 0.65 gets from the get_metadata and canned_queries
    hooks: table options in configuration, its description and table titles in the
    metadata tables, and stored queries. What the user configured wins. A no-op on
    0.65."""
    table_metadata = metadata.get("tables", {})
    if hasattr(datasette, "table_config"):
        config = copy.deepcopy(datasette.config or {})
        tables = config.setdefault("databases", {}).setdefault(database, {})
        tables = tables.setdefault("tables", {})
        for table, options in table_metadata.items():
            options = {k: v for k, v in options.items() if k not in _METADATA_KEYS}
            tables[table] = {**options, **(tables.get(table) or {})}
        datasette.config = config
    if hasattr(datasette, "set_database_metadata") and "description" in metadata:
        if "description" not in await datasette.get_database_metadata(database):
            await datasette.set_database_metadata(database, "description",
                                                  metadata["description"])
    if hasattr(datasette, "set_resource_metadata"):
        for table, options in table_metadata.items():
            current = await datasette.get_resource_metadata(database, table)
            for key in _METADATA_KEYS:
                if key in options and key not in current:
                    await datasette.set_resource_metadata(database, table, key, options[key])
    if hasattr(datasette, "add_query"):
        for name, query in queries.items():
            # Trusted, as queries from configuration are: read-only SQL any viewer may run.
            await datasette.add_query(
                database, name, query["sql"], title=query.get("title"),
                description=query.get("description"), parameters=query.get("params"),
                is_trusted=True, source="plugin",
            )


def root_login_token(datasette: Any) -> str:
    """The one-time token `/-/auth-token?token=` exchanges for the root actor's cookie.

    The 1.0 alphas also have `root_enabled`, which grants root every permission
    (the write API, dropping tables); it stays off: root gets this plugin's edit
    permission from our rule, as on 0.65."""
    if getattr(datasette, "_root_token", None) is None:
        import secrets

        datasette._root_token = secrets.token_hex(32)
    return datasette._root_token
