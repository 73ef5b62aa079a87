"""Where a sweep's agents claim configurations and record how they ended.

- `StoreBoard`: the store itself, on the machine whose local disk holds it: each claim is
  one BEGIN IMMEDIATE transaction, so no configuration is claimed twice.
- `RemoteBoard`: an agent on a cluster node (RUNSTORE_PUBLISH_DIR set). It never opens
  the hub's store (no SQLite over the network): it asks the hub through files in the
  inbox, and the hub (`runstore sync --watch`, `_sweep_hub`) claims for it on a
  StoreBoard and answers. Its runs are published into the inbox like any node's.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _store
from ._errors import UsageError
from ._names import new_run_id
from ._store import _sweeps as _sql
from ._sweep_config import SweepConfig, load
from ._sweep_search import Done, hyperband_stops, next_draw
from ._values import utc_now

_KILLED = (143, 130, 255, -15, -2)  # SIGTERM, SIGINT (shell, runstore, Popen) exit codes
# How long a node agent waits for the hub to answer a claim before it says so.
ANSWER_PATIENCE_S = 30.0


@dataclass(frozen=True)
class Trial:
    """One configuration of a sweep, claimed for one run (what init() needs to know)."""

    sweep_id: str
    sweep_key: int
    seq: int
    attempt: int
    run_id: str
    params: dict[str, Any]  # as the run's config holds them (nested parameters nested)
    store: str  # the store file (a node's: where its runs are kept before publishing)
    entity: str
    project: str
    remote: bool = False  # claimed through the hub by an agent on a cluster node

    @property
    def root(self) -> str:
        return str(Path(self.store).parent)


@dataclass(frozen=True)
class SweepInfo:
    sweep_id: str
    key: int
    entity: str
    project: str
    seed: int
    retries: int
    config: SweepConfig


def trial_metric(summary: Mapping[str, Any], metric: str | None, goal: str) -> float | None:
    """The sweep metric in a run's summary: a number, or the min/max a summary rule kept."""
    if metric is None:
        return None
    value = summary.get(metric)
    if isinstance(value, Mapping):
        value = value.get("min" if goal == "minimize" else "max", value.get("last"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        return None
    return float(value)


def outcome_of(state: str, exit_code: int | None) -> str:
    """A trial's outcome from its run's state: a run ended by SIGTERM (a cluster's
    preemption or time limit) or Ctrl+C was killed, not wrong: crashed, so offered again."""
    if state == "failed" and exit_code in _KILLED:
        return "crashed"
    return state


def _ended(run: Mapping[str, Any] | None, stopped: bool, fallback: str,
           config: SweepConfig) -> tuple[str, float | None]:
    """(outcome, metric) of a trial whose run is `run` (None: it never started)."""
    state = fallback if run is None else _store.shown_state(run) or fallback
    outcome = "stopped" if stopped else outcome_of(
        state if state in ("finished", "failed", "crashed") else fallback,
        None if run is None else run.get("exit_code"))
    metric = None if run is None else trial_metric(run["summary"], config.metric, config.goal)
    return outcome, metric


def worker_alive(trial: Mapping[str, Any]) -> bool:
    """Whether the process running a trial (its agent, or the program the agent started,
    which may outlive it) may still start or end its run."""
    if trial.get("agent_host") == socket.gethostname() and os.name == "posix":
        return _store.pid_alive(trial.get("worker_pid"), trial.get("worker_started")) or (
            not trial.get("agent_stopped_at")
            and _store.pid_alive(trial.get("agent_pid"), trial.get("agent_pid_started")))
    last = trial.get("agent_last_seen")
    return not trial.get("agent_stopped_at") and last is not None \
        and _store.heartbeat_age({"heartbeat_at": last}) <= _store.STALE_AFTER_S


def find(conn: Any, path: str, project: str | None = None,
         entity: str | None = None) -> dict[str, Any]:
    """A sweep by "id", "project/id" or "entity/project/id"; UsageError if none."""
    parts = str(path).strip("/").split("/")
    if len(parts) > 3 or not all(parts):
        raise UsageError(f"sweep {path!r}: give its id, project/id or entity/project/id")
    sweep_id = parts[-1]
    project = parts[-2] if len(parts) >= 2 else project
    entity = parts[-3] if len(parts) == 3 else entity
    found = _sql.find_sweeps(conn, sweep_id, project, entity)
    if not found:
        raise UsageError(f"no sweep {path!r} in this store; `runstore sweep CONFIG.yaml` "
                         "registers one and prints its id")
    return found[0]


def info_of(row: Mapping[str, Any]) -> SweepInfo:
    return SweepInfo(row["id"], row["sweep_key"], row["entity"], row["project"], row["seed"],
                     row["retries"], load(row["config"]))


class StoreBoard:
    """Claims in the store: one transaction each (see the module's docstring)."""

    def __init__(self, path: Path, sweep_path: str, project: str | None,
                 entity: str | None, agent_id: str,
                 say_waiting: Callable[[int], None] = lambda n: None,
                 host: str | None = None, pid: int | None = None,
                 pid_started: str | None = None) -> None:
        if not path.exists():
            raise UsageError(f"no runstore at {path}; pass the dir the sweep was created in")
        self.path = path
        self.conn = _store.connect(path)
        try:
            self.sweep = info_of(find(self.conn, sweep_path, project, entity))
        except BaseException:
            self.conn.close()
            raise
        self.agent_id = agent_id
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.pid_started = _store.process_started() if pid is None else pid_started
        self.say_waiting = say_waiting

    def beat(self, conn: Any = None) -> None:
        """The agent's sign of life, on `conn` (the monitor thread's own connection: a
        connection used by two threads at once can BEGIN twice) or the board's."""
        conn = conn or self.conn
        with _store.transaction(conn):
            _sql.upsert_agent(conn, self.agent_id, self.sweep.key, self.host, self.pid,
                              self.pid_started, utc_now())

    def state(self) -> str:
        return _sql.sweep_state(self.conn, self.sweep.key)

    def claim(self) -> Trial | str | None:
        """The next trial (a Trial), "wait" (paused, or others' runs may still crash and be
        offered again), or None (the sweep is over). Every query is indexed: a claim
        costs the same in the sweep's 10th configuration and its 100,000th."""
        s, conn = self.sweep, self.conn
        with _store.transaction(conn):
            state = _sql.sweep_state(conn, s.key)
            if state == "paused":
                return "wait"
            if state != "running":
                return None
            still_open = self._settled(_sql.open_trials(conn, s.key))
            target = s.config.target
            if target is not None and _sql.reached(conn, s.key, target, s.config.goal):
                _sql.set_sweep_state(conn, s.key, "finished", utc_now())
                return None
            again = _sql.trial_to_retry(conn, s.key, s.retries)
            if again is not None:
                seq, attempt = again["seq"], again["attempt"] + 1
                params, coords = again["params"], again["coords"]
            else:
                seq, attempt = _sql.next_seq(conn, s.key), 0
                cap = s.config.run_cap
                draw = None if cap is not None and seq >= cap else next_draw(
                    s.config, seq, s.seed, self._learned())
                if draw is None:
                    if still_open:
                        self.say_waiting(len(still_open))
                        return "wait"
                    _sql.set_sweep_state(conn, s.key, "finished", utc_now())
                    return None
                params, coords = s.config.config_for(draw.values), draw.coords
            trial = Trial(s.sweep_id, s.key, seq, attempt, new_run_id(), params,
                          str(self.path), s.entity, s.project)
            _sql.insert_trial(conn, {
                "sweep_key": s.key, "seq": seq, "attempt": attempt, "params": params,
                "coords": coords, "run_id": trial.run_id, "agent_id": self.agent_id,
                "worker_pid": self.pid, "worker_started": self.pid_started,
                "claimed_at": utc_now()})
            _sql.upsert_agent(conn, self.agent_id, s.key, self.host, self.pid,
                              self.pid_started, utc_now())
        return trial

    def _learned(self) -> list[Done]:
        if self.sweep.config.method != "bayes":
            return []
        return [Done(c, m) for c, m in _sql.learned(self.conn, self.sweep.key)]

    def _settled(self, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of the open trials, those left by a worker that is gone get the outcome their
        run shows (crashed when it never started); returns the trials still open."""
        s, still_open = self.sweep, []
        for t in trials:
            if t["agent_id"] == self.agent_id or worker_alive(t):
                still_open.append(t)
                continue
            run = _store.get_run(self.conn, s.project, t["run_id"], s.entity)
            if run is not None:
                _store.settle_runs(self.conn, [run])
                if _store.shown_state(run) == "running":
                    still_open.append(t)  # written from another host: it may finish yet
                    continue
            outcome, metric = _ended(run, False, "crashed", s.config)
            _sql.end_trial(self.conn, s.key, t["seq"], t["attempt"], outcome, metric,
                           utc_now())
        return still_open

    def started(self, trial: Trial, pid: int) -> None:
        """The program the agent started for `trial` runs it now."""
        with _store.transaction(self.conn):
            _sql.set_worker(self.conn, trial.sweep_key, trial.seq, trial.attempt, pid,
                            _store.process_started(pid))

    def has_run(self, trial: Trial) -> bool:
        return _store.get_run(self.conn, trial.project, trial.run_id,
                              trial.entity) is not None

    def end(self, trial: Trial, stopped: bool, fallback: str) -> str:
        """Record how the trial ended: stopped, else its run's state (`fallback` if it has
        no run); returns the outcome."""
        run = _store.get_run(self.conn, trial.project, trial.run_id, trial.entity)
        if run is not None:
            _store.settle_runs(self.conn, [run])
        outcome, metric = _ended(run, stopped, fallback, self.sweep.config)
        with _store.transaction(self.conn):
            _sql.end_trial(self.conn, trial.sweep_key, trial.seq, trial.attempt, outcome,
                           metric, utc_now())
        return outcome

    def should_stop(self, trial: Trial, conn: Any) -> bool:
        """Cancelled, or hyperband stops its run (read on the monitor's connection)."""
        s = self.sweep
        if _sql.sweep_state(conn, s.key) == "cancelled":
            return True
        hyperband = s.config.hyperband
        if hyperband is None or s.config.metric is None:
            return False
        histories = _sql.metric_histories(conn, s.entity, s.project,
                                          [t["run_id"] for t in _sql.sweep_trials(conn, s.key)],
                                          s.config.metric)
        return trial.run_id in hyperband_stops(hyperband, s.config.goal, histories,
                                               [trial.run_id])

    def monitor_connection(self) -> Any:
        return _store.connect(self.path)

    def close(self) -> None:
        try:
            with _store.transaction(self.conn):
                _sql.stop_agent(self.conn, self.agent_id, utc_now())
        except Exception:  # the agent is ending anyway; its row just stays open
            pass
        self.conn.close()


# -- agents on cluster nodes --------------------------------------------------------------


def sweeps_dir(inbox: Path) -> Path:
    """The part of the inbox where node agents and the hub talk about sweeps."""
    return inbox / "sweeps"


def write_atomically(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class RemoteBoard:
    """An agent on a cluster node: claims through the hub (files in the inbox)."""

    def __init__(self, inbox: Path, store: Path, sweep_path: str, agent_id: str,
                 say_waiting: Callable[[int], None] = lambda n: None) -> None:
        self.dir = sweeps_dir(inbox)
        self.store = store  # where this node's runs are kept (per-run stores), then published
        self.agent_id = agent_id
        self.say_waiting = say_waiting
        self._asked = 0
        self._beats = 0
        self.sweep_path = sweep_path
        answer = self._ask({"kind": "hello"})
        if "error" in answer:
            raise UsageError(answer["error"])
        row = answer["sweep"]
        self.sweep = SweepInfo(row["id"], row["sweep_key"], row["entity"], row["project"],
                               row["seed"], row["retries"], load(row["config"]))

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Leave a request for the hub; wait for its answer (saying so if it is slow)."""
        self._asked += 1
        name = f"{self.agent_id}.{self._asked}.json"
        write_atomically(self.dir / "requests" / name, {
            **request, "sweep": self.sweep_path, "agent_id": self.agent_id,
            "host": socket.gethostname(), "pid": os.getpid()})
        answer_path = self.dir / "answers" / name
        said, start = False, time.monotonic()
        while True:
            answer = read_json(answer_path) if answer_path.exists() else None
            if answer is not None:
                answer_path.unlink(missing_ok=True)
                return dict(answer)
            if not said and time.monotonic() - start > ANSWER_PATIENCE_S:
                said = True
                print(f"runstore: waiting for the hub to answer in {self.dir} (is "
                      "`runstore sync --watch` running on it?)", file=sys.stderr, flush=True)
            time.sleep(0.1)

    def beat(self, conn: Any = None) -> None:
        self._beats += 1
        write_atomically(self.dir / "beats" / f"{self.agent_id}.json", {
            "sweep": self.sweep.sweep_id, "host": socket.gethostname(), "pid": os.getpid(),
            "beat": self._beats})

    def state(self) -> str:
        found = read_json(self.dir / "state" / f"{self.sweep.sweep_id}.json")
        return str(found) if isinstance(found, str) else "running"

    def claim(self) -> Trial | str | None:
        answer = self._ask({"kind": "claim"})
        if answer.get("wait"):
            if answer.get("open"):
                self.say_waiting(int(answer["open"]))
            return "wait"
        trial = answer.get("trial")
        if not trial:
            return None
        return Trial(**{**trial, "store": str(self.store), "remote": True})

    def started(self, trial: Trial, pid: int) -> None:
        """Nothing to record: the hub sees this agent alive by its beats."""

    def _run(self, trial: Trial) -> Mapping[str, Any] | None:
        """The trial's run as this node keeps it (a store of its own, before publishing)."""
        from ._filesystems import local_dir, network_filesystem

        for root in (Path(trial.root), local_dir()):
            if network_filesystem(root) and root != local_dir():
                continue
            for path in root.glob(f"offline-run-*-{trial.run_id}/{_store.STORE_FILENAME}"):
                conn = _store.connect(path)
                try:
                    row = _store.get_run(conn, trial.project, trial.run_id, trial.entity)
                    if row is not None:
                        _store.settle_runs(conn, [row])
                        return row
                finally:
                    conn.close()
        return None

    def has_run(self, trial: Trial) -> bool:
        return self._run(trial) is not None

    def end(self, trial: Trial, stopped: bool, fallback: str) -> str:
        outcome, metric = _ended(self._run(trial), stopped, fallback, self.sweep.config)
        write_atomically(self.dir / "results" / f"{trial.run_id}.json", {
            "sweep": trial.sweep_id, "seq": trial.seq, "attempt": trial.attempt,
            "outcome": outcome, "metric": metric})
        return outcome

    def should_stop(self, trial: Trial, conn: Any) -> bool:
        """Cancelled, or the hub (which sees every run) says hyperband stops it."""
        return self.state() == "cancelled" or (self.dir / "stops" / trial.run_id).exists()

    def monitor_connection(self) -> Any:
        return None

    def close(self) -> None:
        (self.dir / "beats" / f"{self.agent_id}.json").unlink(missing_ok=True)
