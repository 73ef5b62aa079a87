"""Every route of the plugin, in one table (the `register_routes` hook returns it).

All routes sit under a database's URL (``/<db>/-/runstore/...``), so they follow
Datasette's `base_url` and database routes. Every handler checks first that the
database is a store and that the actor may view its runs (`access.store_db`,
`access.store_and_key`); tests/test_ui.py holds each route of this table to that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from . import runs_table
from .views import bundle, compare, edit, lineage, media, run, run_output, series, sweep

STORE_PATH = r"^/(?P<database>[^/]+)/-/runstore"
RUN_PATH = STORE_PATH + r"/run/(?P<run_key>[0-9]+)"

View = Callable[[Any, Any], Awaitable[Any]]

ROUTES: list[tuple[str, View]] = [
    # one run: its page, chart data, the status a live page polls, edits (POST)
    (RUN_PATH + r"$", run.run_view),
    (RUN_PATH + r"/metric\.json$", run.metric_view),
    (RUN_PATH + r"/status\.json$", run.status_view),
    (RUN_PATH + r"/edit$", edit.edit_view),
    (RUN_PATH + r"/unrewind$", lineage.unrewind_view),  # undo the newest rewind (POST)
    # its output beyond metrics: console lines, system metrics, media at a step
    (RUN_PATH + r"/console\.json$", run_output.console_view),
    (RUN_PATH + r"/system\.json$", run_output.system_view),
    (RUN_PATH + r"/media\.json$", run_output.media_view),
    # the files runs reference (images, videos, saved code)
    (STORE_PATH + r"/blob/(?P<sha256>[0-9a-f]{64})$", media.blob_view),
    # a project's runs table: redirects to its view (`runs_table`), keeping the filter
    (STORE_PATH + r"/workspace$", runs_table.workspace_view),
    # 2-10 runs side by side
    (STORE_PATH + r"/compare$", compare.compare_view),
    # the workspace charts: metrics of up to 100 runs (a runs table's filter picks them)
    (STORE_PATH + r"/series\.json$", series.series_view),
    # sweeps: one sweep's page, and the list of a store's (or a project's) sweeps
    (STORE_PATH + r"/sweep/(?P<sweep_id>[^/]+)$", sweep.sweep_view),
    (STORE_PATH + r"/sweeps$", sweep.sweeps_view),
    # the scripts and stylesheets of the hooks' pages, joined (`assets.bundle`)
    (STORE_PATH + r"/bundle\.(?P<kind>js|css)$", bundle.bundle_view),
]
