"""Edits of a run's name, tags and notes from its page.

``POST /<db>/-/runstore/run/<run_key>/edit`` with form fields (any of):
``name``, ``notes`` (Markdown; blank clears them), ``tags`` (one per line, replaces
the list), ``add_tag``, ``remove_tag``, and ``csrftoken`` (Datasette's CSRF check
runs before this view: the token on 0.65, the Sec-Fetch-Site/Origin headers on the
1.0 alphas). Allowed to actors with the ``runstore-edit`` permission
(root only, see `security`); the write runs in Datasette's write thread through
the store's `set_run_fields`, which checks values with the rules of the Python API's
setters (runstore._names).

A form post is answered with a redirect to the run page (and a message); a client
sending ``Accept: application/json`` gets ``{"ok": ..., "run": {...}}`` instead.
"""

from __future__ import annotations

from typing import Any, TypedDict
from urllib.parse import parse_qsl

from datasette.utils.asgi import BadRequest, NotFound, Response

from runstore import UsageError
from runstore._store import set_run_fields

from .. import cells
from ..compat import execute_write_fn
from ..security import run_to_change

FIELDS = ("name", "notes", "tags", "add_tag", "remove_tag")
_LABELS = {"name": "name", "notes": "notes", "tags": "tags", "add_tags": "tags",
           "remove_tags": "tags"}


class EditAnswer(TypedDict, total=False):
    """The edit route's JSON answer (to ``Accept: application/json``)."""

    ok: bool
    run: dict[str, Any]  # ok: the run row as it is now
    error: str  # not ok: what was wrong (400); nothing was changed


async def _form(request: Any) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise BadRequest("send the edit as a form (application/x-www-form-urlencoded)")
    try:
        body = (await request.post_body()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8") from None
    return dict(parse_qsl(body, keep_blank_values=True))


def _changes(form: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for set_run_fields from the posted form."""
    changes: dict[str, Any] = {}
    if "name" in form:
        changes["name"] = form["name"].strip()
    if "notes" in form:
        notes = form["notes"].replace("\r\n", "\n")
        changes["notes"] = notes if notes.strip() else None
    if "tags" in form:
        lines = form["tags"].replace("\r\n", "\n").split("\n")
        changes["tags"] = [line.strip() for line in lines if line.strip()]
    if form.get("add_tag", "").strip():
        changes["add_tags"] = [form["add_tag"].strip()]
    if "remove_tag" in form:
        changes["remove_tags"] = [form["remove_tag"]]
    if not changes:
        raise BadRequest(f"nothing to change: send one of {', '.join(FIELDS)}")
    return changes


def _wants_json(request: Any) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def edit_view(datasette: Any, request: Any) -> Response:
    """Change the name, notes or tags of one run (POST only)."""
    target = await run_to_change(
        datasette, request,
        "This runstore UI is read-only (it serves a non-loopback "
        "address); restart `runstore ui` with --enable-writes to edit",
        "Editing runs needs the runstore-edit permission: sign in with "
        "the one-time link that `runstore ui DIR` prints when it starts "
        "(plain `datasette` prints one with --root)")
    if not isinstance(target, tuple):
        return target  # 405
    db, run_key = target
    changes = _changes(await _form(request))

    def write(conn: Any) -> tuple[dict[str, Any] | None, str | None]:
        # A UsageError is returned, not raised: Datasette's write thread would
        # print it to stderr.
        try:
            return set_run_fields(conn, run_key, **changes), None
        except UsageError as exc:
            return None, str(exc)

    run, error = await execute_write_fn(db, write)
    if error is not None:
        if _wants_json(request):
            refused: EditAnswer = {"ok": False, "error": error}
            return Response.json(refused, status=400)
        raise BadRequest(f"Nothing was changed: {error}")
    if run is None:
        raise NotFound(f"No run with run_key {run_key} in {db.name}")
    if _wants_json(request):
        saved: EditAnswer = {"ok": True, "run": run}
        return Response.json(saved)
    what = " and ".join(sorted({_LABELS[k] for k in changes}))
    datasette.add_message(request, f"Saved the {what} of this run.", datasette.INFO)
    run_page = cells.run_url(datasette.urls.database(db.name), run_key)
    return Response.redirect(f"{run_page}#runstore-edit")
