"""The store: the only code in runstore that speaks SQL.

Everything else hands it Python objects. Functions take an open
`sqlite3.Connection`, so the same code runs under runstore's writer thread and
inside Datasette's connections.
"""

from typing import TYPE_CHECKING, Any

from ._blocks import BLOCK, metric_blocks, rebuild_blocks
from ._branching import (
    add_event,
    copy_history,
    last_step,
    lineage,
    mark_resumed,
    metric_aggregates,
    rewind,
    step_runtime,
    undo_rewind,
    unrewind_run,
)
from ._check import integrity_check, schema_version
from ._files import run_files, save_file
from ._history import insert_points, intern_keys
from ._liveness import (
    STALE_AFTER_S,
    check_not_live,
    heartbeat_age,
    is_live,
    on_this_host,
    pid_alive,
    process_gone,
    process_started,
    process_stopped,
    recorded_state,
    settle_runs,
    shown_state,
)
from ._merge import attached, count_points, merge_run
from ._read import (
    get_run,
    get_run_by_key,
    list_runs,
    run_metric_keys,
    scan_history,
)
from ._run_output import (
    console_lines,
    insert_console,
    insert_system,
    save_run_files,
    system_samples,
)
from ._runs import (
    RUN_COLUMNS,
    RunRow,
    count_runs,
    find_run_key,
    insert_run,
    metric_definitions,
    update_run,
)
from ._schema import connect, latest_version, migrate, snapshot_to, transaction

STORE_FILENAME = "runstore.db"

# What only the Datasette plugin needs loads on first use, so `import runstore` stays light.
_LAZY = {
    "blob_range": "._run_page",
    "RUN_SEARCH_TABLE": "._runs_table",
    "canned_queries": "._queries",
    "compare_runs": "._compare",
    "console_page": "._run_page",
    "decode_json": "._json",
    "ensure_key_index": "._runs_table",
    "is_runstore": "._run_page",
    "JSONText": "._workspace",
    "key_index_wanted": "._runs_table",
    "media_at": "._run_page",
    "project_of_view": "._runs_table",
    "project_view_name": "._runs_table",
    "metric_points": "._chart",
    "referenced_blob": "._run_page",
    "refresh_workspace_views": "._runs_table",
    "run_output": "._run_page",
    "run_page": "._run_page",
    "run_status": "._run_page",
    "run_sweep": "._sweep_page",
    "set_run_fields": "._edits",
    "stale_projects": "._runs_table",
    "store_sweeps": "._sweep_page",
    "sweep_page": "._sweep_page",
    "system_series": "._run_page",
    "workspace_projects": "._runs_table",
    "workspace_keys": "._workspace",
    "workspace_series": "._workspace",
}

if TYPE_CHECKING:  # the lazy exports, as type checkers should see them
    from ._chart import metric_points
    from ._compare import compare_runs
    from ._edits import set_run_fields
    from ._json import decode_json
    from ._queries import canned_queries
    from ._run_page import (
        blob_range,
        console_page,
        is_runstore,
        media_at,
        referenced_blob,
        run_output,
        run_page,
        run_status,
        system_series,
    )
    from ._runs_table import (
        RUN_SEARCH_TABLE,
        ensure_key_index,
        key_index_wanted,
        project_of_view,
        project_view_name,
        refresh_workspace_views,
        stale_projects,
        workspace_projects,
    )
    from ._sweep_page import run_sweep, store_sweeps, sweep_page
    from ._workspace import JSONText, workspace_keys, workspace_series


def __getattr__(name: str) -> Any:  # PEP 562: the lazy exports above
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # used by runstore (the library and its tests); the plugin also uses get_run_by_key
    # and shown_state
    "BLOCK",
    "RUN_COLUMNS",
    "RunRow",
    "STALE_AFTER_S",
    "STORE_FILENAME",
    "add_event",
    "attached",
    "check_not_live",
    "connect",
    "console_lines",
    "copy_history",
    "count_points",
    "count_runs",
    "find_run_key",
    "get_run",
    "get_run_by_key",
    "heartbeat_age",
    "insert_console",
    "insert_points",
    "insert_run",
    "insert_system",
    "integrity_check",
    "intern_keys",
    "is_live",
    "last_step",
    "latest_version",
    "lineage",
    "list_runs",
    "mark_resumed",
    "merge_run",
    "metric_aggregates",
    "metric_blocks",
    "metric_definitions",
    "migrate",
    "on_this_host",
    "pid_alive",
    "process_gone",
    "process_started",
    "process_stopped",
    "rebuild_blocks",
    "recorded_state",
    "rewind",
    "run_files",
    "run_metric_keys",
    "save_file",
    "save_run_files",
    "scan_history",
    "schema_version",
    "settle_runs",
    "shown_state",
    "snapshot_to",
    "step_runtime",
    "system_samples",
    "transaction",
    "undo_rewind",
    "unrewind_run",
    "update_run",
    # used by the Datasette plugin only (datasette_plugins/runstore_ui); loaded lazily
    "JSONText",
    "RUN_SEARCH_TABLE",
    "blob_range",
    "canned_queries",
    "compare_runs",
    "console_page",
    "decode_json",
    "ensure_key_index",
    "is_runstore",
    "key_index_wanted",
    "media_at",
    "metric_points",
    "project_of_view",
    "project_view_name",
    "referenced_blob",
    "refresh_workspace_views",
    "run_output",
    "run_page",
    "run_status",
    "run_sweep",
    "set_run_fields",
    "stale_projects",
    "store_sweeps",
    "sweep_page",
    "system_series",
    "workspace_keys",
    "workspace_projects",
    "workspace_series",
]
