"""The read API, shaped like wandb's public API: Api().run("project/id")."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from . import _store
from ._errors import RunNotFound, UsageError
from ._settings import store_path


class ApiRun:
    """A stored run, read back."""

    def __init__(self, conn: sqlite3.Connection, row: _store.RunRow) -> None:
        self._conn = conn
        self._row = row
        self._run_key = row["run_key"]
        self.id: str = row["id"]
        self.entity: str = row["entity"]
        self.project: str = row["project"]
        self.name: str = row["name"]
        # The state every reader shows (the `runs` view's): a running run whose process
        # is gone is crashed, as wandb shows it (Api records that on reading: `_settled`).
        self.state: str = row["state"]
        self.notes: str | None = row["notes"]
        self.tags: list[str] = row["tags"]
        self.group: str | None = row["run_group"]
        self.job_type: str | None = row["job_type"]
        self.config: dict[str, Any] = row["config"]
        self.summary: dict[str, Any] = row["summary"]
        self.commit: str | None = row["git_commit"]
        self.created_at: str = row["created_at"]
        self.exit_code: int | None = row["exit_code"]
        # As the run's process last recorded it; never counts on past its last sign of life.
        self.runtime: float | None = row["runtime"]

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def metadata(self) -> dict[str, Any]:
        """Everything else recorded about the run (host, program, git, ...)."""
        return dict(self._row)

    def scan_history(self, keys: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every history row in step order, as dicts with `_step` and the keys.

        With `keys`, only those keys and only rows that have all of them.
        """
        if isinstance(keys, str):
            keys = [keys]
        return _store.scan_history(self._conn, self._run_key, keys)

    def history(self, keys: Sequence[str] | None = None, pandas: bool = False) -> Any:
        """The whole history as a list of dicts, or a pandas DataFrame with pandas=True."""
        rows = list(self.scan_history(keys))
        if not pandas:
            return rows
        try:
            import pandas as pd
        except ImportError:
            raise UsageError("history(pandas=True) needs pandas: pip install pandas") from None
        return pd.DataFrame.from_records(rows)

    def lineage(self) -> list[dict[str, Any]]:
        """Where this run came from and what branched off it: its resumes, rewinds and
        fork (relation, run_id, parent_id, step, at, rows_moved, undone_at), and the
        forks made from it, oldest first."""
        return _store.lineage(self._conn, self._run_key)

    @property
    def forked_from(self) -> str | None:
        """The id of the run this one was forked from."""
        return next((e["parent_id"] for e in self.lineage()
                     if e["relation"] == "fork" and e["run_id"] == self.id), None)

    @property
    def fork_step(self) -> int | None:
        """The source's step this run was forked at."""
        return self._row.get("fork_step")

    @property
    def rewinds(self) -> list[dict[str, Any]]:
        """This run's rewinds, oldest first."""
        return [e for e in self.lineage() if e["relation"] == "rewind"]

    def metric_keys(self) -> list[str]:
        """The keys this run has history for."""
        return _store.run_metric_keys(self._conn, self._run_key)

    def __repr__(self) -> str:
        return f"<runstore.ApiRun {self.path} ({self.name}) {self.state}>"


class ApiSweep:
    """A sweep, read back: `Api(dir).sweep("project/sweep_id")`."""

    def __init__(self, api: Api, row: dict[str, Any]) -> None:
        self._api, self._key = api, row["sweep_key"]
        self.id: str = row["id"]
        self.entity: str = row["entity"]
        self.project: str = row["project"]
        self.name: str | None = row["name"]
        self.method: str = row["method"]
        self.config: dict[str, Any] = row["config"]
        metric = self.config.get("metric")
        self.metric: str | None = metric.get("name") if isinstance(metric, dict) else metric
        self.goal: str = (metric.get("goal", "minimize") if isinstance(metric, dict)
                          else "minimize")

    @property
    def state(self) -> str:
        """running, paused, cancelled or finished (read now, not when the sweep was read)."""
        from ._store import _sweeps

        return _sweeps.sweep_state(self._api._conn, self._key)

    @property
    def trials(self) -> list[dict[str, Any]]:
        """Every configuration tried, in order: seq, attempt, params, run_id, outcome
        (finished, failed, crashed, stopped; None while it runs) and metric."""
        from ._store import _sweeps

        keep = ("seq", "attempt", "params", "run_id", "outcome", "metric", "claimed_at",
                "ended_at")
        return [{k: t[k] for k in keep} for t in _sweeps.sweep_trials(self._api._conn,
                                                                       self._key)]

    @property
    def runs(self) -> list[ApiRun]:
        """The sweep's runs, in the order their configurations were claimed."""
        out = []
        for trial in self.trials:
            row = _store.get_run(self._api._conn, self.project, trial["run_id"], self.entity)
            if row is not None:
                out.append(ApiRun(self._api._conn, self._api._settled([row])[0]))
        return out

    def best_run(self, order: str | None = None) -> ApiRun | None:
        """The run with the best metric in its summary (the sweep's metric and goal; or
        `order`, a summary key, "-key" meaning larger is better); None if no run has it."""
        from ._sweep import trial_metric

        key, goal = self.metric, self.goal
        if order:
            key, goal = order.lstrip("+-"), "maximize" if order.startswith("-") else "minimize"
        scored: list[tuple[float, ApiRun]] = []
        for run in self.runs:
            metric = trial_metric(run.summary, key, goal)
            if metric is not None:
                scored.append((metric if goal == "minimize" else -metric, run))
        return min(scored, key=lambda pair: pair[0])[1] if scored else None

    def __repr__(self) -> str:
        return f"<runstore.ApiSweep {self.entity}/{self.project}/{self.id} ({self.state})>"


class Api:
    """Read access to a store: `Api(dir).run("project/id")`, `.runs("project")`.

    `dir` is the store's directory (default: as init()'s) or its .db file. Close it with
    `close()`, or use it as a context manager: `with runstore.Api(dir) as api: ...`."""

    def __init__(self, dir: str | os.PathLike[str] | None = None) -> None:
        self._path = store_path(dir)
        if not self._path.exists():
            raise RunNotFound(f"no runstore at {self._path}; pass Api(dir=...) the directory "
                              "your runs were logged to")
        self._conn = _store.connect(self._path)

    def run(self, path: str) -> ApiRun:
        """A run by "project/id" or "entity/project/id"."""
        parts = path.strip("/").split("/")
        if len(parts) == 2:
            entity, (project, run_id) = None, parts
        elif len(parts) == 3:
            entity, project, run_id = parts
        else:
            raise UsageError(f"run path {path!r} must be 'project/id' or 'entity/project/id'")
        row = _store.get_run(self._conn, project, run_id, entity)
        if row is None:
            raise RunNotFound(f"no run {path!r} in {self._path}")
        return ApiRun(self._conn, self._settled([row])[0])

    def runs(self, path: str | None = None) -> list[ApiRun]:
        """The runs of a project ("project" or "entity/project"; all when None), newest first."""
        entity = project = None
        if path:
            parts = path.strip("/").split("/")
            if len(parts) == 1:
                project = parts[0]
            elif len(parts) == 2:
                entity, project = parts
            else:
                raise UsageError(f"runs path {path!r} must be 'project' or 'entity/project'")
        rows = self._settled(_store.list_runs(self._conn, project, entity))
        return [ApiRun(self._conn, row) for row in rows]

    def sweep(self, path: str) -> ApiSweep:
        """A sweep by "sweep_id", "project/sweep_id" or "entity/project/sweep_id"."""
        from ._sweep import find

        return ApiSweep(self, find(self._conn, path))

    def _settled(self, rows: list[_store.RunRow]) -> list[_store.RunRow]:
        """`rows`, with the runs whose process on this host is gone recorded as crashed
        in the store (so SQL readers see it at once, not once the heartbeat is 30 s old)."""
        _store.settle_runs(self._conn, rows)
        return rows

    def unrewind(self, path: str) -> ApiRun:
        """Undo the newest rewind of a run: its archived tail goes back into the live
        history, and whatever was logged since is archived in turn (nothing is lost)."""
        run = self.run(path)
        if _store.unrewind_run(self._conn, run._run_key) is None:  # deleted since self.run()
            raise RunNotFound(f"no run {path!r} in {self._path}")
        return self.run(path)

    def close(self) -> None:
        """Close the connection to the store (`with Api(dir) as api:` does it on exit)."""
        self._conn.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<runstore.Api {self._path}>"
