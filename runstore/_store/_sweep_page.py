"""Reads for the sweep pages of the Datasette plugin (schema/010_sweeps.sql).

- `sweep_page`: one sweep in one trip: the sweep row, its config as given, its swept
  parameters (from the config: dotted name, distribution, whether a log axis suits it),
  its metric and goal, its agents, and one row per trial with its run (run_key, name,
  shown state), outcome, swept values (by dotted name) and metric;
- `store_sweeps`: the sweeps of a store (or of one project), newest first, with their
  trial counts and best metric, for the run list's links;
- `run_sweep`: the sweep a run was a trial of, for a link from its run page.

A store made before version 10 has no sweep tables: these reads then find no sweep.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from ._json import loads
from ._sweeps import list_sweeps, sweep_agents

# Distributions drawn on a log scale (their values are all > 0).
_LOG_KINDS = frozenset({"log_uniform", "log_uniform_values", "q_log_uniform",
                        "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values",
                        "log_normal", "q_log_normal"})


def has_sweeps(conn: sqlite3.Connection) -> bool:
    """Whether the store has the sweep tables (schema version 10 on)."""
    (count,) = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        " AND name IN ('sweeps', 'sweep_trials', 'sweep_agents')").fetchone()
    return bool(count == 3)


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {dotted key: leaf value}."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                out.update(_flat(value, name + "."))
            else:
                out[name] = value
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _config_params(raw: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None, str]:
    """The swept parameters, metric and goal of a sweep config as the sweep checked it."""
    from .._errors import UsageError
    from .._sweep_config import load

    try:
        checked = load(raw)
    except UsageError:
        return [], None, "minimize"
    params = [{"name": p.name, "path": list(p.path), "kind": p.kind,
               "log": p.kind in _LOG_KINDS,
               "values": list(p.spec["values"]) if "values" in p.spec else None}
              for p in checked.params if p.searched]
    return params, checked.metric, checked.goal


def _summary_metric(summary: Any, metric: str | None, goal: str) -> float | None:
    """The sweep metric in a run's summary (as the agent reads it when the trial ends)."""
    if metric is None or not isinstance(summary, dict):
        return None
    value = summary.get(metric)
    if isinstance(value, dict):
        value = value.get("min" if goal == "minimize" else "max", value.get("last"))
    return _number(value)


def sweep_page(conn: sqlite3.Connection, sweep_id: str) -> dict[str, Any] | None:
    """Everything the sweep page needs, or None if the store has no sweep `sweep_id`.

    `trials`: in claim order (seq, attempt), each with `status` (the trial's outcome
    once it ended, else its run's shown state, `pending` while no run exists yet),
    `params` ({dotted name: value}) and `metric` (the recorded one, else read from the
    run's summary while it runs)."""
    if not has_sweeps(conn):
        return None
    cur = conn.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        return None
    sweep = dict(zip(names, row, strict=True))
    raw = loads(sweep["config"])
    sweep["config"] = raw if isinstance(raw, dict) else {}
    params, metric, goal = _config_params(sweep["config"])
    trials = []
    for (seq, attempt, trial_params, run_id, agent_id, claimed_at, ended_at, outcome,
         trial_value, run_key, run_name, run_state, summary) in conn.execute(
            "SELECT t.seq, t.attempt, t.params, t.run_id, t.agent_id, t.claimed_at,"
            " t.ended_at, t.outcome, t.metric, r.run_key, r.name, r.state, r.summary"
            " FROM sweep_trials t JOIN sweeps s ON s.sweep_key = t.sweep_key"
            " LEFT JOIN runs r ON r.entity = s.entity AND r.project = s.project"
            " AND r.id = t.run_id WHERE t.sweep_key = ? ORDER BY t.seq, t.attempt",
            (sweep["sweep_key"],)):
        value = _number(trial_value)
        if value is None and outcome is None:
            value = _summary_metric(loads(summary) if summary else None, metric, goal)
        trials.append({
            "seq": seq, "attempt": attempt, "run_id": run_id, "agent_id": agent_id,
            "claimed_at": claimed_at, "ended_at": ended_at, "outcome": outcome,
            "status": outcome or run_state or "pending",
            "run_key": run_key, "run_name": run_name,
            "params": _flat(loads(trial_params)), "metric": value,
        })
    if not params:  # a config the checker refuses now: the columns the trials have
        seen = dict.fromkeys(k for t in trials for k in t["params"])
        params = [{"name": k, "path": k.split("."), "kind": "unknown", "log": False,
                   "values": None} for k in seen]
    return {"sweep": sweep, "params": params, "metric": metric, "goal": goal,
            "trials": trials, "agents": sweep_agents(conn, sweep["sweep_key"])}


def store_sweeps(conn: sqlite3.Connection, project: str | None = None) -> list[dict[str, Any]]:
    """The sweeps (of `project`, or all), newest first: id, name, entity, project,
    method, state, created_at, trials, open_trials, metric, goal and `best` (the best
    recorded metric by the goal, None before any)."""
    if not has_sweeps(conn):
        return []
    out = []
    for sweep in list_sweeps(conn, project):
        raw = sweep["config"] if isinstance(sweep["config"], dict) else {}
        metric = raw.get("metric")
        name = metric.get("name") if isinstance(metric, dict) else metric
        goal = metric.get("goal", "minimize") if isinstance(metric, dict) else "minimize"
        goal = "maximize" if goal == "maximize" else "minimize"
        (best,) = conn.execute(
            f"SELECT {'max' if goal == 'maximize' else 'min'}(metric) FROM sweep_trials"
            " WHERE sweep_key = ?", (sweep["sweep_key"],)).fetchone()
        out.append({key: sweep[key] for key in (
            "id", "name", "entity", "project", "method", "state", "created_at", "trials",
            "open_trials")} | {"metric": name if isinstance(name, str) else None,
                               "goal": goal, "best": best})
    return out


def run_sweep(conn: sqlite3.Connection, run_key: int) -> dict[str, Any] | None:
    """The sweep the run `run_key` was a trial of ({id, name, seq}), or None."""
    if not has_sweeps(conn):
        return None
    row = conn.execute(
        "SELECT s.id, s.name, t.seq FROM run_records r"
        " JOIN sweeps s ON s.entity = r.entity AND s.project = r.project"
        " JOIN sweep_trials t ON t.sweep_key = s.sweep_key AND t.run_id = r.id"
        " WHERE r.run_key = ? ORDER BY t.attempt DESC LIMIT 1", (run_key,)).fetchone()
    return None if row is None else {"id": row[0], "name": row[1], "seq": row[2]}
