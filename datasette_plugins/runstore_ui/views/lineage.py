"""Lineage edits from the run page: undo the newest rewind of a run.

``POST /<db>/-/runstore/run/<run_key>/unrewind`` with ``csrftoken`` (Datasette's CSRF
check runs before this view: the token on 0.65, the Sec-Fetch-Site/Origin headers on
the 1.0 alphas). Allowed to actors with the ``runstore-edit`` permission, as edits
are (`security`); the write runs in Datasette's write thread through
`runstore._store.unrewind_run`, the code of `Api.unrewind` and `runstore unrewind`.
A form post is answered with a redirect to the run page and a message; a client
sending ``Accept: application/json`` gets ``{"ok": ..., "error"?: ...}``.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore import UsageError
from runstore._store import unrewind_run

from .. import cells
from ..compat import execute_write_fn
from ..security import run_to_change


async def unrewind_view(datasette: Any, request: Any) -> Response:
    """Undo the newest rewind of one run (POST only)."""
    target = await run_to_change(
        datasette, request,
        "This runstore UI is read-only; restart `runstore ui` with "
        "--enable-writes to undo a rewind",
        "Undoing a rewind needs the runstore-edit permission: sign in "
        "with the one-time link `runstore ui` printed")
    if not isinstance(target, tuple):
        return target  # 405
    db, run_key = target

    def write(conn: Any) -> tuple[bool, str | None]:
        # A UsageError is returned, not raised: Datasette's write thread would print it.
        try:
            return unrewind_run(conn, run_key) is not None, None
        except UsageError as exc:
            return True, str(exc)

    found, error = await execute_write_fn(db, write)
    if not found:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    wants_json = "application/json" in request.headers.get("accept", "")
    if error is not None:
        if wants_json:
            return Response.json({"ok": False, "error": error}, status=400)
        raise BadRequest(f"Nothing was changed: {error}")
    if wants_json:
        return Response.json({"ok": True})
    datasette.add_message(request, "Undid the newest rewind of this run: its archived "
                          "history is back.", datasette.INFO)
    return Response.redirect(cells.run_url(datasette.urls.database(db.name), run_key))
