"""URLs of the plugin's static files, wherever Datasette mounted them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

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
