"""Liveness: the one home of "is a run still being written, and what state does it show".

Two questions, two rules:

- **Which state a run shows** (every reader: SQL, the read API, `runstore ls`, the UI).
  A `running` run whose heartbeat is older than `STALE_AFTER_S` shows as `crashed`, as
  wandb shows it. SQL can evaluate this half, so the `runs` view (schema/008_run_state.sql)
  computes it; `shown_state` is the same rule for a row in Python (SQL cannot import the
  constant: tests/test_liveness.py checks the two agree). Python readers on the run's own
  host see sooner that its process is gone, and record that (`settle_runs`), so the view
  shows `crashed` at once, not 30 s later.
- **Who may take a run over** (resume, rewind, undo a rewind, sync). On the run's host a
  run is live while its writer process exists and is the same process (same start time,
  when known), whatever its heartbeat's age: a process paused with Ctrl+Z, stopped in a
  debugger or waiting on a lock writes nothing for a while, but will write again. On
  another host, whose processes cannot be seen, the heartbeat rule decides.

`is_live` and `settle_runs` need the state as written (`recorded_state` in the rows the
store's reads return, `state` in a raw `run_records` row), not the state shown.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .._errors import UsageError
from ._runs import RunRow
from ._schema import transaction

# The writer beats every few seconds (with every batch, and at least every 5 s), so a
# running run whose heartbeat is older than this shows as crashed. The `runs` view
# (schema/008_run_state.sql) holds the same number.
STALE_AFTER_S = 30.0
# Marking a run crashed is a courtesy to other readers: never wait long for the lock.
_MARK_BUSY_MS = 200

_boot_id: str | None = None


def heartbeat_age(row: Mapping[str, Any]) -> float:
    """Seconds since the run's last heartbeat (its creation if it never beat)."""
    stamp = row.get("heartbeat_at") or row.get("created_at")
    if not stamp:
        return float("inf")
    then = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    if then.tzinfo is None:  # written by hand or by SQL's datetime(): UTC
        then = then.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - then).total_seconds()


def recorded_state(row: Mapping[str, Any]) -> str | None:
    """The state as the run's writer (or a reader that saw it die) recorded it."""
    return row.get("recorded_state", row.get("state"))


def shown_state(row: Mapping[str, Any]) -> str | None:
    """The state every reader shows: a running run whose heartbeat is older than
    STALE_AFTER_S is crashed (the rule the `runs` view computes in SQL)."""
    state = recorded_state(row)
    if state == "running" and heartbeat_age(row) > STALE_AFTER_S:
        return "crashed"
    return state


# -- processes ----------------------------------------------------------------------


def _read_boot_id() -> str:
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = ""
    return _boot_id


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start token) of a process from Linux's /proc, or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 2 (the command) is in parentheses and may hold spaces or ')'.
    fields = raw[raw.rfind(")") + 2:].split()
    if len(fields) < 20:
        return None
    # fields[0] is field 3 (state); fields[19] is field 22, starttime in clock ticks
    # since boot: with the boot's id it names this process and no later one.
    return fields[0], f"linux:{_read_boot_id()}:{fields[19]}"


def process_stopped(pid: int) -> bool:
    """Whether process `pid` is stopped (Ctrl+Z, SIGSTOP, a debugger); False when it
    cannot be known (no /proc)."""
    found = _proc_stat(pid)
    return found is not None and found[0] in ("T", "t")


def _psutil_stat(pid: int) -> tuple[str, str] | None:
    try:
        import psutil  # optional, and only where /proc is not there to read
    except ImportError:
        return None
    try:
        process = psutil.Process(int(pid))
        zombie = process.status() == psutil.STATUS_ZOMBIE
        return ("Z" if zombie else "R"), f"psutil:{process.create_time()!r}"
    except Exception:  # gone, denied or unsupported: unknown
        return None


def _stat(pid: int) -> tuple[str, str] | None:
    found = _proc_stat(pid)
    return found if found is not None else _psutil_stat(pid)


def process_started(pid: int | None = None) -> str | None:
    """A token for when process `pid` (this one by default) started, to tell it from a
    later process given the same pid; None when it cannot be known. Tokens are only
    compared with each other: on Linux the boot id and /proc's start time in clock
    ticks, elsewhere psutil's create time when psutil is installed."""
    found = _stat(os.getpid() if pid is None else pid)
    return None if found is None else found[1]


def _same_kind(a: str, b: str) -> bool:
    return a.split(":", 1)[0] == b.split(":", 1)[0]


def pid_alive(pid: int | None, started: str | None = None) -> bool:
    """True if process `pid` exists on this host (a zombie does not count) and, when
    `started` and its start time are both known, is the process that started then."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except (OSError, OverflowError, ValueError):
        return False
    found = _stat(int(pid))
    if found is None:
        return True  # exists; its start time is unknown: the pid alone decides
    state, token = found
    if state in ("Z", "X"):  # exited, not yet reaped: it will never write again
        return False
    if started and token and _same_kind(started, token):
        return started == token
    return True


def _sees_processes() -> bool:
    # os.kill(pid, 0) would send CTRL_C_EVENT on Windows: there the heartbeat decides.
    return os.name == "posix"


def on_this_host(row: Mapping[str, Any]) -> bool:
    """True if the run's process ran on this machine, whose processes can be seen."""
    return bool(row.get("host")) and row["host"] == socket.gethostname() \
        and _sees_processes()


def is_live(row: Mapping[str, Any]) -> bool:
    """True if the run's writer may still write to it: no other process may take it over.

    On this host: its process still exists and is the same process, whatever the age of
    its heartbeat (it may be paused). On another host: its heartbeat is fresh.
    """
    if recorded_state(row) != "running":
        return False
    if on_this_host(row):
        return pid_alive(row.get("pid"), row.get("pid_started"))
    return heartbeat_age(row) <= STALE_AFTER_S


def process_gone(row: Mapping[str, Any]) -> bool:
    """True for a run recorded as running whose process on this host is gone: it
    crashed, and any reader on this host may record that."""
    return recorded_state(row) == "running" and on_this_host(row) \
        and not pid_alive(row.get("pid"), row.get("pid_started"))


def check_not_live(row: Mapping[str, Any], what: str) -> None:
    """Raise UsageError if the run is live (see `is_live`): `what` ("resume", "rewind",
    ...) would make two processes write one run."""
    if not is_live(row):
        return
    where = f"cannot {what} run {row['id']!r} of project {row['entity']}/{row['project']}"
    pid = row.get("pid")
    age = heartbeat_age(row)
    if on_this_host(row) and age > STALE_AFTER_S:
        raise UsageError(
            f"{where}: it is live in process {pid} on this host, which still exists although "
            f"the run has not been written for {age:.0f} s (is it paused with Ctrl+Z, stopped "
            f"in a debugger or waiting on a lock?); two writers never share a run. Let it "
            f"go on (fg, or kill -CONT {pid}) and finish, end it (kill {pid}), "
            f"or start a new run (fork_from it to branch off)"
        )
    raise UsageError(
        f"{where}: it is live in process {pid} on {row.get('host')}; two writers never share "
        "a run. Wait for it to finish, or start a new run (fork_from it to branch off)"
    )


# -- recording what a reader saw ----------------------------------------------------------


def settle_runs(conn: sqlite3.Connection, rows: Iterable[RunRow]) -> list[int]:
    """Record as crashed the runs among `rows` (as the store's reads return them) whose
    process on this host is gone, and show them so in `rows`; returns their run_keys.

    One small transaction, and only when there is something to record. It changes a row
    only if it still names the same process (a resume that took the run over since is
    left alone), so it is idempotent. Best effort: on a read-only or busy store the rows
    still show `crashed`, and the view catches up once the heartbeat is 30 s old.
    """
    gone = [row for row in rows if process_gone(row)]
    if not gone:
        return []
    for row in gone:
        row["state"] = "crashed"
        if "recorded_state" in row:
            row["recorded_state"] = "crashed"
    marked = [row["run_key"] for row in gone]
    own = not conn.in_transaction
    try:
        if own:
            (timeout,) = conn.execute("PRAGMA busy_timeout").fetchone()
            conn.execute(f"PRAGMA busy_timeout = {_MARK_BUSY_MS}")
        try:
            with transaction(conn):
                for row in gone:
                    conn.execute(
                        "UPDATE run_records SET state = 'crashed', runtime = coalesce(runtime,"
                        " (julianday(coalesce(heartbeat_at, created_at)) - julianday(created_at))"
                        " * 86400.0) WHERE run_key = ? AND state = 'running' AND pid IS ?"
                        " AND pid_started IS ? AND heartbeat_at IS ?",
                        (row["run_key"], row.get("pid"), row.get("pid_started"),
                         row.get("heartbeat_at")),
                    )
        finally:
            if own:
                conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    except sqlite3.Error:  # read-only, locked: the rows show it all the same
        pass
    return marked
