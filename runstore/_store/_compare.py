"""Reads for the compare page: several runs and the metric keys each one has."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ._read import get_run_by_key
from ._run_page import chart_keys


def compare_runs(conn: sqlite3.Connection, run_keys: Sequence[int]) -> dict[str, Any]:
    """The runs `run_keys` in the order given (`runs`), the keys not found
    (`missing`) and each found run's metric keys (`metric_keys`, by run_key; those
    drawn as charts, not media)."""
    runs, missing, keys = [], [], {}
    for run_key in run_keys:
        run = get_run_by_key(conn, run_key)
        if run is None:
            missing.append(run_key)
            continue
        runs.append(run)
        keys[run_key] = chart_keys(conn, run_key)
    return {"runs": runs, "missing": missing, "metric_keys": keys}
