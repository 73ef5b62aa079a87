"""The workspace charts on every table page whose rows are runs: which pages get them,
and the scripts and stylesheets they load (through the `extra_js_urls` and
`extra_css_urls` hooks). The panel itself is static/runstore_workspace.js; its data
route is `views.series`."""

from __future__ import annotations

from typing import Any

from . import detect
from .assets import UPLOT_VERSION

RUN_KEY = "run_key"


async def shows_runs(datasette: Any, database: str | None, table: str | None,
                     view_name: str) -> bool:
    """True on the table page of a store's table or view with a run_key column (the
    runs table, run_list, a project's view of runs)."""
    if view_name != "table" or not database or not table:
        return False
    if not await detect.is_store(datasette, database):
        return False
    try:
        columns = await datasette.get_database(database).table_columns(table)
    except Exception:  # a table that vanished, an unreadable view: no charts
        return False
    return RUN_KEY in columns


# The static files the panel needs, in load order (the hooks bundle them: assets.bundle)
JS_FILES = ["runstore_time.js",  # the UI's one time format
            f"uPlot-{UPLOT_VERSION}.iife.min.js",
            # the number formats the workspace shares with the run and compare charts
            "runstore_charts.js",
            "runstore_parallel.js",
            "runstore_workspace.js"]
CSS_FILES = [f"uPlot-{UPLOT_VERSION}.min.css", "runstore_workspace.css"]
