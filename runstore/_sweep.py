"""Sweeps that live in the store: `runstore.sweep()` registers one, `runstore.agent()`
runs its configurations (wandb's names, YAML and semantics; see docs/SWEEPS.md).

Agents claim configurations on a board (`_sweep_board`): the store itself, one
BEGIN IMMEDIATE transaction per claim, so no configuration runs twice; or, for an agent on
a cluster node, the hub, asked through files in the inbox. A configuration whose run
crashed is offered again (`retries` times). An agent runs a configuration by calling a
function in its own process (whose `runstore.init()` becomes the trial's run) or by
starting the sweep's `program`/`command`, whose init() finds the trial through
RUNSTORE_SWEEP_PARAM_PATH. Hyperband stops runs from the agent that runs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import _store, _threads
from ._errors import UsageError
from ._names import new_run_id
from ._provenance import os_user
from ._settings import env_value, store_path
from ._store import _sweeps as _sql
from ._sweep_board import RemoteBoard, StoreBoard, Trial, find, trial_metric
from ._sweep_config import load
from ._values import utc_now, warn_user

__all__ = ["Trial", "find", "trial_metric"]  # re-exported: the read API and init() use them

PARAM_PATH_ENV = "RUNSTORE_SWEEP_PARAM_PATH"
SWEEP_ID_ENV = "RUNSTORE_SWEEP_ID"
# How often an agent checks hyperband and the sweep's state and says it is alive.
POLL_S = float(os.environ.get("RUNSTORE_SWEEP_POLL_S", "2"))
# An agent stops after this many trials in a row failed (a bug in the training script).
MAX_FAILURES_IN_A_ROW = int(os.environ.get("RUNSTORE_AGENT_MAX_INITIAL_FAILURES", "3"))
# A program that ignores the SIGTERM of a stop gets SIGKILL this much later.
KILL_DELAY_S = float(os.environ.get("RUNSTORE_AGENT_KILL_DELAY", "30"))
STATES = ("running", "paused", "cancelled", "finished")
_ENVVAR = re.compile(r"\$\{envvar:([^}]*)\}")
DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")


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
    if trial.remote:  # a node's trial: the hub keeps it open while its agent beats
        return trial
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


# -- the agent ----------------------------------------------------------------------------


def agent(sweep_id: str, function: Callable[[], Any] | None = None, count: int | None = None,
          project: str | None = None, entity: str | None = None, *,
          dir: str | os.PathLike[str] | None = None) -> None:
    """Run the sweep's configurations until none is left (or `count` of them): each by
    calling `function` in this process, or without it by starting the sweep's program.
    On a cluster node (RUNSTORE_PUBLISH_DIR set), claims go through the hub."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                              or count < 1):
        raise UsageError(f"count must be a positive int, got {count!r}")
    _Agent(sweep_id, project, entity, dir).run(function, count)


class _Agent:
    def __init__(self, sweep_path: str, project: str | None, entity: str | None,
                 dir: str | os.PathLike[str] | None) -> None:
        self.agent_id = f"{socket.gethostname()}-{os.getpid()}-{new_run_id()[:4]}"
        self._waiting_for: int | None = None
        inbox = env_value("publish_dir")
        self.board: StoreBoard | RemoteBoard
        if inbox:  # a cluster node: the hub claims for it
            self.board = RemoteBoard(Path(inbox).expanduser(), store_path(dir), sweep_path,
                                     self.agent_id, self._say_waiting)
        else:
            self.board = StoreBoard(_local_store(store_path(dir)), sweep_path, project,
                                    entity, self.agent_id, self._say_waiting)
        self.sweep_id = self.board.sweep.sweep_id
        self.config = self.board.sweep.config
        self._lock = threading.Lock()
        self._running: Trial | None = None  # the trial being run, for the monitor
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped: Trial | None = None  # the trial the monitor stopped
        self._thread_id = threading.get_ident()
        self._done = threading.Event()

    # -- the loop ------------------------------------------------------------------------

    def run(self, function: Callable[[], Any] | None, count: int | None) -> None:
        try:
            self._check_program(function)
            if self.config.method == "bayes":  # load Optuna now, not under a claim's lock
                with contextlib.suppress(ImportError):
                    import optuna  # noqa: F401
            self.board.beat()
        except BaseException:
            self.board.close()
            raise
        monitor = _threads.start(self._monitor, "runstore-sweep-agent")
        ran = failures = 0
        try:
            while count is None or ran < count:
                claimed = self.board.claim()
                if isinstance(claimed, str):  # "wait"
                    time.sleep(POLL_S)
                    continue
                self._waiting_for = None
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
            self.board.close()

    def _check_program(self, function: Callable[[], Any] | None) -> None:
        raw = self.config.raw
        if function is not None:
            return
        if not (raw.get("program") or raw.get("command")):
            raise UsageError(f"sweep {self.sweep_id} has no program or command to run; "
                             "pass agent() a function, or add `program:` to the sweep config")
        program = raw.get("program")
        uses_program = "${program}" in json.dumps(raw.get("command") or DEFAULT_COMMAND)
        if uses_program and isinstance(program, str) and not Path(program).exists():
            raise UsageError(f"the sweep's program {program!r} is not in {Path.cwd()}; start "
                             "the agent in the directory that holds it")

    def _say_waiting(self, count: int) -> None:
        """Say once (per change) what an agent with nothing to claim waits for."""
        if count != self._waiting_for:
            self._waiting_for = count
            print(f"runstore: sweep {self.sweep_id} has nothing left to claim; waiting for "
                  f"{count} run(s) other agents are running (one may crash and be offered "
                  "again)", file=sys.stderr, flush=True)

    def _end(self, trial: Trial, fallback: str) -> str:
        return self.board.end(trial, self._stopped == trial, fallback)

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
        return self.board.has_run(trial)

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
            self.board.started(trial, proc.pid)
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
        conn = self.board.monitor_connection()
        try:
            while not self._done.wait(POLL_S):
                try:
                    self.board.beat(conn)
                    trial = self._running
                    if trial is not None and self.board.should_stop(trial, conn):
                        self._stop(trial)
                except (sqlite3.Error, OSError) as exc:  # busy or gone for a moment
                    warn_user(f"runstore: sweep agent could not read the sweep: {exc}")
        finally:
            if conn is not None:
                conn.close()

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


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()


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
