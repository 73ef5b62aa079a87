"""The plugin's static files a page loads through the extra_js_urls and extra_css_urls
hooks, joined in one response (`assets.bundle`).

Route: ``/<db>/-/runstore/bundle.js?f=<file>&f=<file>...&v=<digest>`` (or ``.css``).
A request whose `v` is the content's digest may be cached for good; any other is
answered with the current content and no caching.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import BadRequest, Response

from ..access import store_db
from ..assets import bundle

CONTENT_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


async def bundle_view(datasette: Any, request: Any) -> Response:
    """The named static files of one kind, joined in order."""
    await store_db(datasette, request)
    kind = request.url_vars["kind"]
    try:
        body, digest = bundle(tuple(request.args.getlist("f")), kind)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    cache = ("public, max-age=31536000, immutable" if request.args.get("v") == digest
             else "no-cache")
    return Response(body, content_type=CONTENT_TYPES[kind], headers={"cache-control": cache})
