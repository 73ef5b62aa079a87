"""The store: the only code in runstore that speaks SQL.

Everything else hands it Python objects. Functions take an open
`sqlite3.Connection`, so the same code runs under runstore's writer thread and
inside Datasette's connections.
"""

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
)
from ._extras import (
    console_lines,
    insert_console,
    insert_system,
    save_run_files,
    system_samples,
)
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
from ._runs import RUN_COLUMNS, count_runs, find_run_key, insert_run, update_run
from ._schema import connect, latest_version, migrate, transaction

STORE_FILENAME = "runstore.db"

# Functions only the UI needs load on first use, so `import runstore` stays light.
_LAZY = {
    "compare_runs": "._compare",
    "set_run_fields": "._edits",
    "canned_queries": "._queries",
    "is_runstore": "._ui",
    "metric_points": "._ui",
    "run_page": "._ui",
    "run_status": "._ui",
}


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 module attribute hook
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    # liveness: what state a run shows, and whether a process still holds it
    "STALE_AFTER_S",
    "check_not_live",
    "heartbeat_age",
    "is_live",
    "on_this_host",
    "pid_alive",
    "process_gone",
    "process_started",
    "recorded_state",
    "settle_runs",
    "shown_state",
    "console_lines",
    "insert_console",
    "insert_system",
    "save_run_files",
    "system_samples",
    "canned_queries",
    "compare_runs",
    "BLOCK",
    "metric_blocks",
    "rebuild_blocks",
    "attached",
    "count_points",
    "merge_run",
    "run_files",
    "save_file",
    "set_run_fields",
    "add_event",
    "copy_history",
    "last_step",
    "lineage",
    "mark_resumed",
    "metric_aggregates",
    "rewind",
    "step_runtime",
    "undo_rewind",
    "RUN_COLUMNS",
    "STORE_FILENAME",
    "connect",
    "count_runs",
    "find_run_key",
    "get_run",
    "get_run_by_key",
    "insert_points",
    "insert_run",
    "intern_keys",
    "is_runstore",
    "latest_version",
    "list_runs",
    "metric_points",
    "migrate",
    "run_metric_keys",
    "run_page",
    "run_status",
    "scan_history",
    "transaction",
    "update_run",
]
