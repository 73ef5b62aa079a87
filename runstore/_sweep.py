"""Sweeps that live in the store: `runstore.sweep()` registers one, `runstore.agent()`
runs its configurations (wandb's names, YAML and semantics; see docs/SWEEPS.md).

Agents in any number of processes coordinate only through the store: each claims the
next configuration in one BEGIN IMMEDIATE transaction (`_claim`), so no configuration runs
twice; a configuration whose run crashed is offered again (`retries` times). An agent
runs a configuration by calling a function in its own process (whose `runstore.init()`
becomes the trial's run) or by starting the sweep's `program`/`command`, whose init()
finds the trial through RUNSTORE_SWEEP_PARAM_PATH. Hyperband stops runs from the agent
that runs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import random
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import _store
from ._errors import UsageError
from ._names import new_run_id
from ._provenance import os_user
from ._settings import env_value, store_path
from ._store import _sweeps as _sql
from ._sweep_config import SweepConfig, load
from ._sweep_search import Done, hyperband_stops, next_draw
from ._values import utc_now, warn_user

PARAM_PATH_ENV = "RUNSTORE_SWEEP_PARAM_PATH"
SWEEP_ID_ENV = "RUNSTORE_SWEEP_ID"
# How often an agent checks hyperband and the sweep's state and says it is alive.
POLL_S = float(os.environ.get("RUNSTORE_SWEEP_POLL_S", "2"))
# An agent stops after this many trials in a row failed (a bug in the training script).
MAX_FAILURES_IN_A_ROW = int(os.environ.get("RUNSTORE_AGENT_MAX_INITIAL_FAILURES", "3"))
# A program that ignores the SIGTERM of a stop gets SIGKILL this much later.
KILL_DELAY_S = float(os.environ.get("RUNSTORE_AGENT_KILL_DELAY", "30"))
_KILLED = (143, 130, 255, -15, -2)  # SIGTERM, SIGINT (shell, runstore, Popen) exit codes
STATES = ("running", "paused", "cancelled", "finished")
_ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")
DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")


@dataclass(frozen=True)
class Trial:
    """One configuration of a sweep, claimed for one run (what init() needs to know)."""

    sweep_id: str
    sweep_key: int
    seq: int
    attempt: int
    run_id: str
    params: dict[str, Any]  # as the run's config holds them (nested parameters nested)
    store: str  # the store file
    entity: str
    project: str

    @property
    def root(self) -> str:
        return str(Path(self.store).parent)


class SweepStopped(BaseException):
    """Raised in a function run by agent() when its run is stopped (hyperband, cancel):
    a BaseException, so a training loop's `except Exception` does not swallow it."""


# -- the trial this process runs: read by init() ------------------------------------------

_current: Trial | None = None  # set by an agent running a function in this process
_env_used = False


def take_trial() -> Trial | None:
    """The trial the next init() of this process becomes, once: the in-process agent's,
    else the one an agent handed this program through RUNSTORE_SWEEP_PARAM_PATH."""
    global _current, _env_used
    if _current is not None:
        trial, _current = _current, None
        return trial
    path = os.environ.get(PARAM_PATH_ENV)
    if not path or _env_used:
        return None
    _env_used = True
    try:
        trial = Trial(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        warn_user(f"runstore: {PARAM_PATH_ENV}={path} names no sweep trial ({exc}); "
                  "this run is not part of a sweep")
        return None
    conn = _store.connect(trial.store)
    try:
        gone = _sql.taken_over(conn, trial.sweep_key, trial.seq, trial.attempt)
    finally:
        conn.close()
    if gone:  # its agent died before this program started its run, and others took over
        raise UsageError(f"configuration {trial.seq} of sweep {trial.sweep_id} was given to "
                         "another agent after this program's agent stopped; not running "
                         "it twice")
    return trial


def merged_config(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """init()'s config with the sweep's values over it (nested dicts merged key by key)."""
    out = dict(config)
    for key, value in params.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged_config(out[key], value)
        else:
            out[key] = value
    return out


# -- registering and steering a sweep -----------------------------------------------------


def sweep(sweep_config: Mapping[str, Any] | str | os.PathLike[str], project: str | None = None,
          entity: str | None = None, *, dir: str | os.PathLike[str] | None = None,
          retries: int = 1, seed: int | None = None) -> str:
    """Register a sweep (a wandb sweep config: dict or YAML path) in the store at `dir`;
    returns its id, for agent(). `retries`: how often a configuration whose run crashed
    is offered again. `seed`: random and bayes draw from it (random when None)."""
    checked = load(os.fspath(sweep_config) if isinstance(sweep_config, os.PathLike)
                   else sweep_config)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"retries must be an int >= 0, got {retries!r}")
    raw = checked.raw
    program = raw.get("program")
    project = (project or raw.get("project") or env_value("project")
               or (Path(program).stem if isinstance(program, str) else "uncategorized"))
    entity = entity or raw.get("entity") or env_value("entity") or os_user()
    sweep_id = new_run_id()
    conn = _store.connect(_local_store(store_path(dir)))
    try:
        with _store.transaction(conn):
            _sql.insert_sweep(conn, {
                "id": sweep_id, "entity": str(entity), "project": str(project),
                "name": raw.get("name"), "method": checked.method, "config": raw,
                "seed": random.getrandbits(31) if seed is None else int(seed),
                "retries": retries, "created_at": utc_now()})
    finally:
        conn.close()
    return sweep_id


def set_state(sweep_id: str, state: str, dir: str | os.PathLike[str] | None = None) -> None:
    """Pause (agents wait), resume, or cancel (agents stop their runs) a sweep."""
    if state not in ("running", "paused", "cancelled"):
        raise UsageError(f"a sweep can be set running, paused or cancelled, not {state!r}")
    conn = _store.connect(store_path(dir))
    try:
        with _store.transaction(conn):
            row = find(conn, sweep_id)
            if row["state"] in ("cancelled", "finished") and state != "cancelled":
                raise UsageError(f"sweep {row['id']} is {row['state']}; it cannot be "
                                 f"set {state}")
            _sql.set_sweep_state(conn, row["sweep_key"], state, utc_now())
    finally:
        conn.close()


def _local_store(path: Path) -> Path:
    """`path`, unless it is on a network filesystem: agents coordinate through the store's
    SQLite locks, which must never be taken over NFS (see docs/SCALE-OUT.md)."""
    from ._filesystems import network_filesystem

    network = None if env_value("allow_network_filesystem") else network_filesystem(path)
    if network is not None:
        raise UsageError(
            f"{path} is on {network}, a network filesystem: sweeps coordinate through the "
            "store's SQLite locks, which must never be taken over the network. Register the "
            "sweep and run its agents on the machine whose local disk holds the store (its "
            "agents may run many processes there); agents on cluster nodes are not "
            "supported yet (docs/SWEEPS.md)")
    return path


def find(conn: sqlite3.Connection, path: str, project: str | None = None,
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


# -- the agent ----------------------------------------------------------------------------


def agent(sweep_id: str, function: Callable[[], Any] | None = None, count: int | None = None,
          project: str | None = None, entity: str | None = None, *,
          dir: str | os.PathLike[str] | None = None) -> None:
    """Run the sweep's configurations until none is left (or `count` of them): each by
    calling `function` in this process, or without it by starting the sweep's program."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 1):
        raise UsageError(f"count must be a positive int, got {count!r}")
    _Agent(_local_store(store_path(dir)), sweep_id, project, entity).run(function, count)


class _Agent:
    def __init__(self, path: Path, sweep_path: str, project: str | None,
                 entity: str | None) -> None:
        if not path.exists():
            raise UsageError(f"no runstore at {path}; pass the dir the sweep was created in")
        self.path = path
        self.conn = _store.connect(path)
        row = find(self.conn, sweep_path, project, entity)
        self.key: int = row["sweep_key"]
        self.sweep_id: str = row["id"]
        self.entity: str = row["entity"]
        self.project: str = row["project"]
        self.seed: int = row["seed"]
        self.retries: int = row["retries"]
        self.config: SweepConfig = load(row["config"])
        self.agent_id = f"{socket.gethostname()}-{os.getpid()}-{new_run_id()[:4]}"
        self._lock = threading.Lock()
        self._running: Trial | None = None  # the trial being run, for the monitor
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped: Trial | None = None  # the trial the monitor stopped
        self._thread_id = threading.get_ident()
        self._done = threading.Event()
        self._waiting_for: tuple[str, ...] | None = None

    # -- the loop ------------------------------------------------------------------------

    def run(self, function: Callable[[], Any] | None, count: int | None) -> None:
        raw = self.config.raw
        if function is None and not (raw.get("program") or raw.get("command")):
            raise UsageError(f"sweep {self.sweep_id} has no program or command to run; "
                             "pass agent() a function, or add `program:` to the sweep config")
        program = raw.get("program")
        uses_program = "${program}" in json.dumps(raw.get("command") or DEFAULT_COMMAND)
        if function is None and uses_program and isinstance(program, str) \
                and not Path(program).exists():
            raise UsageError(f"the sweep's program {program!r} is not in {Path.cwd()}; start "
                             "the agent in the directory that holds it")
        if self.config.method == "bayes":  # load Optuna now, not under the claim's lock
            with contextlib.suppress(ImportError):
                import optuna  # noqa: F401
        self._beat()
        monitor = threading.Thread(target=self._monitor, name="runstore-sweep-agent",
                                   daemon=True)
        monitor.start()
        ran = failures = 0
        try:
            while count is None or ran < count:
                claimed = self._claim()
                if isinstance(claimed, str):  # "wait"
                    time.sleep(POLL_S)
                    continue
                if claimed is None:
                    break
                ran += 1
                outcome = (self._call(claimed, function) if function is not None
                           else self._start(claimed))
                failures = failures + 1 if outcome == "failed" else 0
                if failures >= MAX_FAILURES_IN_A_ROW:
                    warn_user(f"runstore: {failures} runs of sweep {self.sweep_id} failed in "
                              "a row; this agent stops (fix the training script and start "
                              "it again)")
                    break
        finally:
            self._done.set()
            monitor.join(timeout=POLL_S + 5)
            with contextlib.suppress(sqlite3.Error), _store.transaction(self.conn):
                _sql.stop_agent(self.conn, self.agent_id, utc_now())
            self.conn.close()

    def _beat(self) -> None:
        with _store.transaction(self.conn):
            _sql.upsert_agent(self.conn, self.agent_id, self.key, socket.gethostname(),
                              os.getpid(), _store.process_started(), utc_now())

    def _claim(self) -> Trial | str | None:
        """The next trial (a Trial), "wait" (paused, or others' runs may still crash and be
        offered again), or None (the sweep is over). Every query is indexed: a claim
        costs the same in the sweep's 10th configuration and its 100,000th."""
        with _store.transaction(self.conn):
            state = _sql.sweep_state(self.conn, self.key)
            if state == "paused":
                return "wait"
            if state != "running":
                return None
            still_open = self._settled(_sql.open_trials(self.conn, self.key))
            target = self.config.target
            if target is not None and _sql.reached(self.conn, self.key, target,
                                                   self.config.goal):
                _sql.set_sweep_state(self.conn, self.key, "finished", utc_now())
                return None
            again = _sql.trial_to_retry(self.conn, self.key, self.retries)
            if again is not None:
                seq, attempt = again["seq"], again["attempt"] + 1
                params, coords = again["params"], again["coords"]
            else:
                seq, attempt = _sql.next_seq(self.conn, self.key), 0
                cap = self.config.run_cap
                draw = None if cap is not None and seq >= cap else next_draw(
                    self.config, seq, self.seed, self._learned())
                if draw is None:
                    if still_open:
                        self._say_waiting(still_open)
                        return "wait"
                    _sql.set_sweep_state(self.conn, self.key, "finished", utc_now())
                    return None
                params, coords = self.config.config_for(draw.values), draw.coords
            trial = Trial(self.sweep_id, self.key, seq, attempt, new_run_id(), params,
                          str(self.path), self.entity, self.project)
            _sql.insert_trial(self.conn, {
                "sweep_key": self.key, "seq": seq, "attempt": attempt, "params": params,
                "coords": coords, "run_id": trial.run_id, "agent_id": self.agent_id,
                "worker_pid": os.getpid(), "worker_started": _store.process_started(),
                "claimed_at": utc_now()})
            _sql.upsert_agent(self.conn, self.agent_id, self.key, socket.gethostname(),
                              os.getpid(), _store.process_started(), utc_now())
        self._waiting_for = None
        return trial

    def _learned(self) -> list[Done]:
        if self.config.method != "bayes":
            return []
        return [Done(coords, metric) for coords, metric in _sql.learned(self.conn, self.key)]

    def _say_waiting(self, still_open: list[dict[str, Any]]) -> None:
        """Say once (per change) what an agent with nothing to claim waits for."""
        waiting = tuple(t["run_id"] for t in still_open)
        if waiting != self._waiting_for:
            self._waiting_for = waiting
            print(f"runstore: sweep {self.sweep_id} has nothing left to claim; waiting for "
                  f"{len(waiting)} run(s) other agents are running (one may crash and be "
                  "offered again)", file=sys.stderr, flush=True)

    def _settled(self, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of the open trials, those left by a worker that is gone get the outcome their
        run shows (crashed when it never started); returns the trials still open."""
        still_open = []
        for t in trials:
            if t["agent_id"] == self.agent_id or _worker_alive(t):
                still_open.append(t)
                continue
            run = _store.get_run(self.conn, self.project, t["run_id"], self.entity)
            if run is not None:
                _store.settle_runs(self.conn, [run])
                state = _store.shown_state(run) or "crashed"
                if state == "running":
                    still_open.append(t)  # written from another host: it may finish yet
                    continue
                metric = trial_metric(run["summary"], self.config.metric, self.config.goal)
                state = _outcome(state, run.get("exit_code"))
            else:
                state, metric = "crashed", None
            _sql.end_trial(self.conn, self.key, t["seq"], t["attempt"], state, metric,
                           utc_now())
        return still_open

    def _end(self, trial: Trial, fallback: str) -> str:
        """Record how the trial ended: stopped, else its run's state (`fallback` if it
        has no run)."""
        run = _store.get_run(self.conn, trial.project, trial.run_id, trial.entity)
        if run is not None:
            _store.settle_runs(self.conn, [run])
        state = fallback if run is None else _store.shown_state(run) or fallback
        outcome = "stopped" if self._stopped == trial else _outcome(
            state if state in ("finished", "failed", "crashed") else fallback,
            None if run is None else run.get("exit_code"))
        metric = None if run is None else trial_metric(run["summary"], self.config.metric,
                                                        self.config.goal)
        with _store.transaction(self.conn):
            _sql.end_trial(self.conn, self.key, trial.seq, trial.attempt, outcome, metric,
                           utc_now())
        return outcome

    # -- running one trial ---------------------------------------------------------------

    def _call(self, trial: Trial, function: Callable[[], Any]) -> str:
        """The trial in this process: function()'s runstore.init() becomes its run."""
        global _current
        from . import _lifecycle

        exit_code = 0
        before = {id(run) for run in _lifecycle.active_runs()}
        _current = trial
        try:
            try:
                with self._lock:
                    self._running = trial
                function()
            finally:
                with self._lock:
                    self._running = None
                    _clear_async_exception(self._thread_id)
        except SweepStopped:
            pass
        except Exception:
            traceback.print_exc()
            exit_code = 1
        except BaseException:  # Ctrl+C, SIGTERM: end the run, then stop the agent
            self._finish_runs(trial, before, 255)
            self._end(trial, "crashed")
            raise
        finally:
            _current = None
        if not self._finish_runs(trial, before, exit_code):
            warn_user(f"runstore: the function of sweep {self.sweep_id} did not call "
                      "runstore.init(); its configuration has no run")
        return self._end(trial, "failed")

    def _finish_runs(self, trial: Trial, before: set[int], exit_code: int) -> bool:
        """Finish every run function() started and left open (the next configuration's
        init() must start a run of its own); False if the trial's run never started."""
        from . import _lifecycle

        for run in _lifecycle.active_runs():
            if id(run) not in before:
                run.finish(exit_code=exit_code)
        return _store.get_run(self.conn, trial.project, trial.run_id,
                              trial.entity) is not None

    def _start(self, trial: Trial) -> str:
        """The trial as a process of the sweep's program/command."""
        with tempfile.TemporaryDirectory(prefix="runstore-sweep-") as tmp:
            trial_file = Path(tmp) / "trial.json"
            trial_file.write_text(json.dumps(asdict(trial)))
            args_file = Path(tmp) / "args.json"
            args_file.write_text(json.dumps(trial.params))
            command = expand_command(self.config.raw, trial.params, str(args_file))
            # A script written for wandb (`import wandb`) logs its run here, too.
            env = {"RUNSTORE_AS_WANDB": "1", **os.environ, PARAM_PATH_ENV: str(trial_file),
                   SWEEP_ID_ENV: trial.sweep_id}
            try:
                proc = subprocess.Popen(command, env=env)
            except OSError as exc:
                warn_user(f"runstore: cannot start {shlex.join(command)}: {exc}")
                return self._end(trial, "failed")
            with _store.transaction(self.conn):
                _sql.set_worker(self.conn, trial.sweep_key, trial.seq, trial.attempt,
                                proc.pid, _store.process_started(proc.pid))
            with self._lock:
                self._running, self._proc = trial, proc
            try:
                code = proc.wait()
            except BaseException:  # Ctrl+C reached the program too: let it finish its run
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
                self._end(trial, "failed")
                raise
            finally:
                with self._lock:
                    self._running, self._proc = None, None
        return self._end(trial, "finished" if code == 0 else "failed")

    # -- the monitor thread: heartbeat, hyperband, cancel ----------------------------------

    def _monitor(self) -> None:
        conn = _store.connect(self.path)
        try:
            while not self._done.wait(POLL_S):
                try:
                    self._check(conn)
                except sqlite3.Error as exc:  # busy or gone for a moment: try again later
                    warn_user(f"runstore: sweep agent could not read the store: {exc}")
        finally:
            conn.close()

    def _check(self, conn: sqlite3.Connection) -> None:
        with _store.transaction(conn):
            _sql.upsert_agent(conn, self.agent_id, self.key, socket.gethostname(),
                              os.getpid(), _store.process_started(), utc_now())
        trial = self._running
        if trial is None:
            return
        state = _sql.find_sweeps(conn, self.sweep_id)[0]["state"]
        stop = state == "cancelled"
        hyperband = self.config.hyperband
        if not stop and hyperband is not None and self.config.metric is not None:
            trials = _sql.sweep_trials(conn, self.key)
            histories = _sql.metric_histories(conn, self.entity, self.project,
                                              [t["run_id"] for t in trials],
                                              self.config.metric)
            stop = trial.run_id in hyperband_stops(hyperband, self.config.goal, histories,
                                                   [trial.run_id])
        if stop:
            self._stop(trial)

    def _stop(self, trial: Trial) -> None:
        with self._lock:
            if self._running != trial or self._stopped == trial:
                return
            self._stopped = trial
            if self._proc is not None:
                proc = self._proc
                proc.terminate()  # the program's runstore finishes its run (SIGTERM)
                killer = threading.Timer(KILL_DELAY_S, _kill_if_running, (proc,))
                killer.daemon = True
                killer.start()
            else:
                _raise_in_thread(self._thread_id, SweepStopped)


def _worker_alive(trial: Mapping[str, Any]) -> bool:
    """Whether the process running a trial (its agent, or the program the agent started,
    which may outlive it) may still start or end its run."""
    if trial.get("agent_host") == socket.gethostname() and os.name == "posix":
        return _store.pid_alive(trial.get("worker_pid"), trial.get("worker_started")) or (
            not trial.get("agent_stopped_at")
            and _store.pid_alive(trial.get("agent_pid"), trial.get("agent_pid_started")))
    last = trial.get("agent_last_seen")
    return not trial.get("agent_stopped_at") and last is not None \
        and _store.heartbeat_age({"heartbeat_at": last}) <= _store.STALE_AFTER_S


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()


def _outcome(state: str, exit_code: int | None) -> str:
    """A trial's outcome from its run's state: a run ended by SIGTERM (a cluster's
    preemption or time limit) or Ctrl+C was killed, not wrong: crashed, so offered again."""
    if state == "failed" and exit_code in _KILLED:
        return "crashed"
    return state


def _raise_in_thread(thread_id: int, exc: type[BaseException]) -> None:
    """Raise `exc` in another thread at its next Python instruction (as wandb's agent
    stops a function it runs)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def _clear_async_exception(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


# -- program mode: wandb's command macros ---------------------------------------------------


def _arg_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def expand_command(raw: Mapping[str, Any], params: Mapping[str, Any],
                   args_json_file: str) -> list[str]:
    """The sweep's command for one configuration: `command` (a list, or a string split as
    a shell would) with wandb's macros, by default `${env} ${interpreter} ${program}
    ${args}`. ${interpreter} is the agent's own Python, which has runstore installed."""
    command = raw.get("command") or list(DEFAULT_COMMAND)
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise UsageError("sweep config: command must be a list of strings")
    program = raw.get("program")
    args = {
        "${args}": [f"--{k}={_arg_value(v)}" for k, v in params.items()],
        "${args_no_hyphens}": [f"{k}={_arg_value(v)}" for k, v in params.items()],
        "${args_no_boolean_flags}": [
            f"--{k}" if v is True else f"--{k}={_arg_value(v)}"
            for k, v in params.items() if v is not False],
        "${args_json}": [json.dumps(params)],
    }
    single = {
        "${env}": "/usr/bin/env" if os.name == "posix" else "",
        "${interpreter}": sys.executable,
        "${program}": program if isinstance(program, str) else "",
        "${args_json_file}": args_json_file,
    }
    out: list[str] = []
    for item in command:
        if item in args:
            out.extend(args[item])
            continue
        if "${program}" in item and not program:
            raise UsageError("sweep config: the command uses ${program} but the config "
                             "has no `program`")
        for macro, value in single.items():
            item = item.replace(macro, value)
        item = _ENVVAR.sub(lambda m: os.environ.get(m.group(1), ""), item)
        if item:
            out.append(item)
    return out
