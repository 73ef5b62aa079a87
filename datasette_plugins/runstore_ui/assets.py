"""URLs of the plugin's static files, wherever Datasette mounted them, and bundles of
them: the scripts and stylesheets a page gets through the extra_js_urls and
extra_css_urls hooks are served joined, in one response each (`views.bundle`).
Datasette serves a static file in 4 KB chunks, one thread hop each and no cache
headers: a table of runs asked for 13 files, which took 0.3-0.5 s before the page could
paint on the project's 2-core machine."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

STATIC_DIR = Path(__file__).resolve().parent / "static"
UPLOT_VERSION = "1.6.32"


@functools.lru_cache(maxsize=1)
def _plugin_name() -> str:
    # Datasette mounts static/ under the distribution name when the plugin came
    # from an entry point ("runstore"), else under the module name.
    from datasette.plugins import get_plugins

    for plugin in get_plugins():
        static = plugin.get("static_path")
        if static and Path(static).resolve() == STATIC_DIR:
            return str(plugin["name"])
    return "runstore"


def static_url(datasette: Any, filename: str) -> str:
    """The URL Datasette serves `static/<filename>` of this plugin at."""
    return datasette.urls.static_plugins(_plugin_name(), filename)


# What each kind of bundle joins with: a `;` ends a script that ends without one.
BUNDLE_KINDS = {"js": "\n;\n", "css": "\n"}
MAX_BUNDLED = 20


def bundle_files(kind: str) -> frozenset[str]:
    """The static files a bundle of `kind` ("js" or "css") may hold."""
    return frozenset(p.name for p in STATIC_DIR.iterdir() if p.suffix == "." + kind)


def bundle(names: tuple[str, ...], kind: str) -> tuple[bytes, str]:
    """The static files `names`, joined in order, and a digest of what was joined (kept
    while the files are unchanged). ValueError for a name that is not a file of `kind`."""
    allowed = bundle_files(kind)
    if not names or len(names) > MAX_BUNDLED or not set(names) <= allowed:
        raise ValueError(f"a {kind} bundle holds 1 to {MAX_BUNDLED} of: "
                         + ", ".join(sorted(allowed)))
    stamps = tuple((STATIC_DIR / name).stat().st_mtime_ns for name in names)
    return _joined(names, kind, stamps)


@functools.lru_cache(maxsize=64)
def _joined(names: tuple[str, ...], kind: str, stamps: tuple[int, ...]) -> tuple[bytes, str]:
    body = BUNDLE_KINDS[kind].encode().join((STATIC_DIR / name).read_bytes() for name in names)
    return body, hashlib.sha256(body).hexdigest()[:16]


def bundle_url(datasette: Any, database: str, names: list[str], kind: str) -> str:
    """The URL of one response holding the static files `names` (in order): the route
    `/<db>/-/runstore/bundle.<kind>`, its `v` the content's digest, so a browser may
    keep it for good."""
    _, digest = bundle(tuple(names), kind)
    query = urlencode([*(("f", name) for name in names), ("v", digest)])
    return f"{datasette.urls.database(database)}/-/runstore/bundle.{kind}?{query}"
