"""Sweeps in the store: the sweep, its trials (configuration + attempt + run id), its
agents, and the metric histories hyperband compares (schema/010_sweeps.sql).

Claiming is composed by runstore._sweep inside one `transaction()` (BEGIN IMMEDIATE), so
two agents never read the same trials and then both insert the next one.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from ._json import dumps, loads

_SWEEP_COLUMNS = ("id", "entity", "project", "name", "method", "config", "seed", "retries",
                  "created_at")
_TRIAL_COLUMNS = ("sweep_key", "seq", "attempt", "params", "coords", "run_id", "agent_id",
                  "worker_pid", "worker_started", "claimed_at")
_WITH_AGENT = ("SELECT t.*, a.host AS agent_host, a.pid AS agent_pid,"
               " a.pid_started AS agent_pid_started, a.last_seen AS agent_last_seen,"
               " a.stopped_at AS agent_stopped_at"
               " FROM sweep_trials t LEFT JOIN sweep_agents a ON a.agent_id = t.agent_id")


def _dicts(cur: sqlite3.Cursor, json_cols: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        item = dict(zip(names, row, strict=True))
        for col in json_cols:
            if col in item:
                item[col] = loads(item[col])
        out.append(item)
    return out


def insert_sweep(conn: sqlite3.Connection, fields: dict[str, Any]) -> int:
    """Add a sweep; returns its sweep_key."""
    values = [dumps(fields[c]) if c == "config" else fields[c] for c in _SWEEP_COLUMNS]
    cur = conn.execute(
        f"INSERT INTO sweeps ({', '.join(_SWEEP_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_SWEEP_COLUMNS))})", values)
    assert cur.lastrowid is not None
    return cur.lastrowid


def find_sweeps(conn: sqlite3.Connection, sweep_id: str, project: str | None = None,
                entity: str | None = None) -> list[dict[str, Any]]:
    """The sweeps with this id (at most one), optionally only in a project/entity."""
    sql, params = "SELECT * FROM sweeps WHERE id = ?", [sweep_id]
    if project is not None:
        sql, params = sql + " AND project = ?", [*params, project]
    if entity is not None:
        sql, params = sql + " AND entity = ?", [*params, entity]
    return _dicts(conn.execute(sql, params), ("config",))


def list_sweeps(conn: sqlite3.Connection, project: str | None = None) -> list[dict[str, Any]]:
    """Sweeps, newest first, with how many trials each has and how many are open."""
    sql = ("SELECT s.*, (SELECT count(*) FROM sweep_trials t WHERE t.sweep_key = s.sweep_key)"
           " AS trials, (SELECT count(*) FROM sweep_trials t WHERE t.sweep_key = s.sweep_key"
           " AND t.outcome IS NULL) AS open_trials FROM sweeps s")
    params: list[Any] = []
    if project is not None:
        sql, params = sql + " WHERE s.project = ?", [project]
    return _dicts(conn.execute(sql + " ORDER BY s.created_at DESC, s.sweep_key DESC", params),
                  ("config",))


def sweep_state(conn: sqlite3.Connection, sweep_key: int) -> str:
    return str(conn.execute("SELECT state FROM sweeps WHERE sweep_key = ?",
                            (sweep_key,)).fetchone()[0])


def set_sweep_state(conn: sqlite3.Connection, sweep_key: int, state: str,
                    at: str | None = None) -> None:
    conn.execute("UPDATE sweeps SET state = ?, finished_at = ? WHERE sweep_key = ?",
                 (state, at if state in ("finished", "cancelled") else None, sweep_key))


def sweep_trials(conn: sqlite3.Connection, sweep_key: int) -> list[dict[str, Any]]:
    """Every trial of the sweep in (seq, attempt) order, with its agent's host, pid and
    last sign of life."""
    return _dicts(conn.execute(f"{_WITH_AGENT} WHERE t.sweep_key = ? ORDER BY t.seq,"
                               " t.attempt", (sweep_key,)), ("params", "coords"))


def open_trials(conn: sqlite3.Connection, sweep_key: int) -> list[dict[str, Any]]:
    """The trials not ended yet, with their agents (as sweep_trials)."""
    return _dicts(conn.execute(f"{_WITH_AGENT} WHERE t.sweep_key = ? AND t.outcome IS NULL"
                               " ORDER BY t.seq, t.attempt", (sweep_key,)),
                  ("params", "coords"))


def next_seq(conn: sqlite3.Connection, sweep_key: int) -> int:
    """The number the sweep's next new configuration gets."""
    return int(conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM sweep_trials"
                            " WHERE sweep_key = ?", (sweep_key,)).fetchone()[0])


def trial_to_retry(conn: sqlite3.Connection, sweep_key: int,
                   retries: int) -> dict[str, Any] | None:
    """The first configuration whose latest attempt crashed with attempts to spare."""
    found = _dicts(conn.execute(
        "SELECT * FROM sweep_trials t WHERE sweep_key = ? AND outcome = 'crashed'"
        " AND attempt < ? AND NOT EXISTS (SELECT 1 FROM sweep_trials u WHERE"
        " u.sweep_key = t.sweep_key AND u.seq = t.seq AND u.attempt > t.attempt)"
        " ORDER BY seq LIMIT 1", (sweep_key, retries)), ("params", "coords"))
    return found[0] if found else None


def learned(conn: sqlite3.Connection, sweep_key: int) -> list[tuple[dict[str, Any], float]]:
    """(coords, metric) of every trial that ended with the metric: what bayes learns from."""
    return [(loads(coords), metric) for coords, metric in conn.execute(
        "SELECT coords, metric FROM sweep_trials WHERE sweep_key = ? AND metric IS NOT NULL"
        " ORDER BY seq, attempt", (sweep_key,))]


def reached(conn: sqlite3.Connection, sweep_key: int, target: float, goal: str) -> bool:
    """Whether a trial's metric reached the target (<= when minimizing, >= maximizing)."""
    op = "<=" if goal == "minimize" else ">="
    return conn.execute(f"SELECT 1 FROM sweep_trials WHERE sweep_key = ? AND metric {op} ?"
                        " LIMIT 1", (sweep_key, target)).fetchone() is not None


def taken_over(conn: sqlite3.Connection, sweep_key: int, seq: int, attempt: int) -> bool:
    """Whether a trial has ended, or was offered again, without its own worker."""
    return conn.execute(
        "SELECT 1 FROM sweep_trials WHERE sweep_key = ? AND seq = ? AND ((attempt = ? AND"
        " outcome IS NOT NULL) OR attempt > ?)", (sweep_key, seq, attempt, attempt)
    ).fetchone() is not None


def set_worker(conn: sqlite3.Connection, sweep_key: int, seq: int, attempt: int, pid: int,
               started: str | None) -> None:
    """The process that runs a trial (a program the agent started)."""
    conn.execute("UPDATE sweep_trials SET worker_pid = ?, worker_started = ? WHERE"
                 " sweep_key = ? AND seq = ? AND attempt = ?",
                 (pid, started, sweep_key, seq, attempt))


def insert_trial(conn: sqlite3.Connection, fields: dict[str, Any]) -> None:
    values = [dumps(fields[c]) if c in ("params", "coords") else fields.get(c)
              for c in _TRIAL_COLUMNS]  # worker_pid/_started may be left out
    conn.execute(f"INSERT INTO sweep_trials ({', '.join(_TRIAL_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_TRIAL_COLUMNS))})", values)


def end_trial(conn: sqlite3.Connection, sweep_key: int, seq: int, attempt: int,
              outcome: str, metric: float | None, at: str) -> None:
    """Record how a trial ended (once: a trial already ended keeps its outcome)."""
    if metric is not None and not math.isfinite(metric):
        metric = None
    conn.execute(
        "UPDATE sweep_trials SET outcome = ?, metric = ?, ended_at = ?"
        " WHERE sweep_key = ? AND seq = ? AND attempt = ? AND outcome IS NULL",
        (outcome, metric, at, sweep_key, seq, attempt))


def upsert_agent(conn: sqlite3.Connection, agent_id: str, sweep_key: int, host: str,
                 pid: int, pid_started: str | None, at: str) -> None:
    """Register an agent, or record that it is still there."""
    conn.execute(
        "INSERT INTO sweep_agents (agent_id, sweep_key, host, pid, pid_started, started_at,"
        " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET"
        " last_seen = excluded.last_seen",
        (agent_id, sweep_key, host, pid, pid_started, at, at))


def stop_agent(conn: sqlite3.Connection, agent_id: str, at: str) -> None:
    conn.execute("UPDATE sweep_agents SET stopped_at = ?, last_seen = ? WHERE agent_id = ?",
                 (at, at, agent_id))


def sweep_agents(conn: sqlite3.Connection, sweep_key: int) -> list[dict[str, Any]]:
    return _dicts(conn.execute(
        "SELECT a.*, (SELECT count(*) FROM sweep_trials t WHERE t.agent_id = a.agent_id)"
        " AS trials FROM sweep_agents a WHERE a.sweep_key = ? ORDER BY a.started_at",
        (sweep_key,)))


def metric_histories(conn: sqlite3.Connection, entity: str, project: str,
                     run_ids: Iterable[str], key: str) -> dict[str, list[float]]:
    """Each run's finite numeric values of `key`, in step order (hyperband's iterations)."""
    out: dict[str, list[float]] = {}
    for run_id in run_ids:
        rows = conn.execute(
            "SELECT h.value FROM run_records r"
            " JOIN metric_keys k ON k.key = ?"
            " JOIN history h ON h.run_key = r.run_key AND h.key_id = k.key_id"
            " WHERE r.entity = ? AND r.project = ? AND r.id = ?"
            " AND typeof(h.value) IN ('integer', 'real') ORDER BY h.step",
            (key, entity, project, run_id)).fetchall()
        out[run_id] = [float(v) for (v,) in rows if math.isfinite(v)]
    return out
