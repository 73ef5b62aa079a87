"""Liveness and one state everywhere (issue 11, "Trust").

- A run whose process is alive on this host (paused with SIGSTOP, as Ctrl+Z does) is
  never taken over, whatever its heartbeat's age; a pid reused by another process is not
  taken for the run's writer (its start time differs).
- Every reader agrees on a run's state and runtime: the `runs` view and `run_list`
  (SQL), the canned queries, `runstore.Api`, `runstore ls` and the UI; the heartbeat
  rule's constant lives in Python and in SQL, and this test keeps the two together.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import runstore
from datasette_plugins.runstore_ui.format import live_state
from helpers import REPO, db_rows, query
from runstore import _store
from runstore._cli import main as cli
from runstore._sync import sync
from ui_helpers import run_url, ui_get

SETTINGS = {"silent": True, "disable_git": True, "disable_stats": True}
HERE = socket.gethostname()

pytestmark = pytest.mark.skipif(os.name != "posix", reason="processes are seen on POSIX")


def _stamp(seconds_ago: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    return env


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid names no process
    return proc.pid


def _stopped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return True  # no /proc to look at: trust the signal


def _age_heartbeat(db: Path, run_id: str, seconds: float, proc: subprocess.Popen) -> None:
    """Stop `proc` (SIGSTOP) with no write transaction open, and make its run's heartbeat
    `seconds` old."""
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not _stopped(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        conn = sqlite3.connect(db, timeout=0.5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?",
                         (_stamp(seconds), run_id))
            conn.execute("COMMIT")
            return
        except sqlite3.OperationalError:  # stopped inside a heartbeat's transaction
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            conn.close()
    pytest.fail("the child always held the store's write lock when stopped")


_PAUSED_CHILD = """
    import sys, runstore
    run = runstore.init(project="p", id="paused", dir=sys.argv[1], settings={settings!r})
    for i in range(5):
        run.log({{"x": float(i), "who": 1.0}})
    run.save()  # committed
    print("ready", flush=True)
    sys.stdin.readline()  # stopped here by SIGSTOP; then told to go on
    for i in range(5, 8):
        run.log({{"x": float(i), "who": 1.0}})
    run.finish()
    print("done", flush=True)
"""


def test_a_stopped_process_keeps_its_run_whatever_its_heartbeat(store_dir, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_PAUSED_CHILD.format(settings=SETTINGS)),
         str(store_dir)],
        cwd=tmp_path, env=_child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        db = store_dir / _store.STORE_FILENAME
        _age_heartbeat(db, "paused", 600, proc)  # Ctrl+Z, ten minutes ago

        # Shown as crashed everywhere (no sign of life for 10 minutes) ...
        assert query(store_dir, "SELECT state FROM runs") == [("crashed",)]
        assert runstore.Api(store_dir).run("p/paused").state == "crashed"
        # ... but its process exists: nobody takes the run over, nor records it crashed.
        for kwargs in ({"id": "paused", "resume": "allow"}, {"id": "paused", "resume": "must"},
                       {"resume_from": "paused?_step=2"}):
            with pytest.raises(runstore.UsageError) as caught:
                runstore.init(project="p", dir=store_dir, settings=SETTINGS, **kwargs)
            message = str(caught.value)
            assert f"process {proc.pid}" in message and "live" in message, message
            assert "paused" in message and f"kill -CONT {proc.pid}" in message, message
        with pytest.raises(runstore.UsageError, match=f"process {proc.pid}"):
            runstore.Api(store_dir).unrewind("p/paused")
        assert query(store_dir, "SELECT state FROM run_records") == [("running",)]

        # Woken up, it goes on writing its own run, alone.
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate("go\n", timeout=60)
        assert proc.returncode == 0 and out.strip() == "done", err
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
    assert query(store_dir, "SELECT step, value FROM metrics WHERE key = 'x' ORDER BY step") \
        == [(s, float(s)) for s in range(8)]
    assert query(store_dir, "SELECT count(*) FROM metrics WHERE key = 'who' AND value != 1") \
        == [(0,)]
    assert query(store_dir, "SELECT state, resume_count FROM runs") == [("finished", 0)]


def _other_token(token: str) -> str:
    """A start token of the same kind as `token`, naming another process."""
    head, _, tail = token.rpartition(":")
    return f"{head}:{int(float(tail)) + 12345}"


@pytest.mark.parametrize("age", [5, 600])
def test_a_reused_pid_is_not_the_runs_writer(store_dir, age):
    proc = _sleeper()  # a live process, holding the pid the run recorded
    try:
        started = _store.process_started(proc.pid)
        if started is None:
            pytest.skip("process start times cannot be read here (no /proc, no psutil)")
        conn = _store.connect(store_dir / _store.STORE_FILENAME)
        for run_id, token in (("same", started), ("reused", _other_token(started)),
                              ("unknown", None)):
            _store.insert_run(conn, {
                "entity": "me", "project": "p", "id": run_id, "name": run_id,
                "created_at": _stamp(age + 10), "heartbeat_at": _stamp(age), "host": HERE,
                "pid": proc.pid, "pid_started": token})
        conn.close()
        # The process that started then is still there: the run is its.
        for run_id in ("same", "unknown"):  # unknown start time: the pid alone decides
            with pytest.raises(runstore.UsageError, match=f"process {proc.pid}"):
                runstore.init(entity="me", project="p", id=run_id, dir=store_dir,
                              resume="allow", settings=SETTINGS)
        # The pid now names a later process: the run's own process is gone.
        run = runstore.init(entity="me", project="p", id="reused", dir=store_dir,
                            resume="must", settings=SETTINGS)
        assert run.resumed
        run.finish()
    finally:
        proc.kill()
        proc.wait()
    states = dict(query(store_dir, "SELECT id, state FROM runs"))
    assert states["reused"] == "finished"


def test_a_zombie_is_not_alive_and_start_times_tell_processes_apart():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = _store.process_started(proc.pid)
        assert _store.pid_alive(proc.pid, started)
        assert _store.pid_alive(proc.pid, None)
        if started is not None:
            assert started != _store.process_started()  # this process started before it
            assert not _store.pid_alive(proc.pid, _other_token(started))
        proc.kill()
        deadline = time.monotonic() + 10
        while _store.pid_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Killed but not reaped yet (a zombie): it will never write again.
        assert not _store.pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not _store.pid_alive(proc.pid)
    assert not _store.pid_alive(None) and not _store.pid_alive(0)


def test_sync_skips_an_offline_run_whose_process_is_paused(tmp_path, store_dir):
    proc = _sleeper()
    try:
        offline = tmp_path / "offline-run-20250101_000000-held"
        conn = _store.connect(offline / _store.STORE_FILENAME)
        _store.insert_run(conn, {
            "entity": "me", "project": "p", "id": "held", "name": "held",
            "created_at": _stamp(700), "heartbeat_at": _stamp(600), "host": HERE,
            "pid": proc.pid, "pid_started": _store.process_started(proc.pid)})
        conn.close()
        said: list[str] = []
        assert sync([offline], store_dir / _store.STORE_FILENAME, say=said.append) == 0
        assert any("still being written" in line for line in said), said
    finally:
        proc.kill()
        proc.wait()
    # Its process gone, the run is merged as crashed.
    said = []
    assert sync([offline], store_dir / _store.STORE_FILENAME, say=said.append,
                include_synced=True) == 1
    assert query(store_dir, "SELECT id, state FROM run_records") == [("held", "crashed")]


# -- one state everywhere -----------------------------------------------------------------

# (id, heartbeat age s, where the process was, recorded runtime) -> (state, runtime) shown.
# Each run lived LIVED seconds before its last heartbeat: the runtime of one that never
# recorded a runtime (killed before its first write) is LIVED, however long ago that was.
LIVED = 2.0
CASES = {
    "far29": (29, "elsewhere", None),
    "far31": (31, "elsewhere", None),
    "dead29": (29, "dead", None),
    "dead31": (31, "dead", 1.5),
    "alive29": (29, "alive", None),
    "alive31": (31, "alive", None),
    "resumed29": (29, "elsewhere", 7.25),
}
EXPECTED = {
    "far29": ("running", LIVED), "far31": ("crashed", LIVED),
    "dead29": ("crashed", LIVED), "dead31": ("crashed", 1.5),
    "alive29": ("running", LIVED), "alive31": ("crashed", LIVED),
    "resumed29": ("running", 7.25),
}


def _write_cases(path: Path, alive: subprocess.Popen) -> dict[str, int]:
    dead = _dead_pid()
    conn = _store.connect(path)
    keys = {}
    for run_id, (age, where, runtime) in CASES.items():
        pid, host = {"elsewhere": (4242, "another-machine"), "dead": (dead, HERE),
                     "alive": (alive.pid, HERE)}[where]
        keys[run_id] = _store.insert_run(conn, {
            "entity": "me", "project": "agree", "id": run_id, "name": f"run-{run_id}",
            "state": "running", "created_at": _stamp(age + LIVED), "heartbeat_at": _stamp(age),
            "runtime": runtime, "host": host, "pid": pid,
            "pid_started": _store.process_started(pid) if where == "alive" else None,
            "config": {"suite": "agree"}, "summary": {"acc": 0.5}})
    conn.close()
    return keys


def _from_api(root: Path) -> dict[str, tuple]:
    return {r.id: (r.state, r.runtime) for r in runstore.Api(root).runs("agree")}


def _from_ls(root: Path) -> dict[str, tuple]:
    result = CliRunner().invoke(cli, ["ls", str(root), "--project", "agree"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:]]
    # ID NAME PROJECT STATE CREATED RUNTIME
    return {row[0]: (row[3], float(row[-1].rstrip("s"))) for row in rows}


def _from_ui(path: Path, keys: dict[str, int]) -> dict[str, tuple]:
    responses = ui_get(path, *(run_url(key) + "/status.json" for key in keys.values()))
    found = {}
    for run_id, response in zip(keys, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["live"] == (body["state"] == "running")
        found[run_id] = (body["state"], body["runtime"])
    return found


def _from_live_state(path: Path, keys: dict[str, int]) -> dict[str, tuple]:
    conn = _store.connect(path, readonly=True)  # as the UI reads: nothing recorded
    try:
        rows = {run_id: _store.get_run_by_key(conn, key) for run_id, key in keys.items()}
    finally:
        conn.close()
    return {run_id: (live_state(row)[0], row["runtime"]) for run_id, row in rows.items()}


def _canned(path: Path, name: str, **params: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(_store.canned_queries()[name]["sql"], params).fetchall()
    finally:
        conn.close()


def _from_sql(path: Path) -> dict[str, dict[str, tuple]]:
    views = {
        "runs": {i: (s, r) for i, s, r in db_rows(path, "SELECT id, state, runtime FROM runs")},
        "run_list": {i: (s, r) for i, s, r in
                     db_rows(path, "SELECT id, state, runtime FROM run_list")},
        "runs_with_config_value": {
            row["run_id"]: (row["state"], None)
            for row in _canned(path, "runs_with_config_value", key="suite", value="agree")},
        "best_run_per_project": {
            row["run_id"]: (row["state"], None)
            for row in _canned(path, "best_run_per_project", metric="acc", project="agree",
                               goal="max")},
    }
    crashed = {row["run_id"]: row["runtime"] for row in _canned(path, "failed_and_crashed_runs")}
    views["failed_and_crashed_runs"] = {
        run_id: ("crashed" if run_id in crashed else "running", crashed.get(run_id))
        for run_id in CASES}
    return views


def _check(found: dict[str, tuple], source: str, ids=CASES) -> None:
    for run_id in ids:
        state, runtime = found[run_id]
        want_state, want_runtime = EXPECTED[run_id]
        assert state == want_state, f"{source}: {run_id} shows {state}, not {want_state}"
        if runtime is not None:
            assert runtime == pytest.approx(want_runtime, abs=0.051), \
                f"{source}: {run_id} runtime {runtime}, not {want_runtime}"


@pytest.mark.ui
@pytest.mark.parametrize("first", ["api", "ls"])
def test_every_reader_shows_the_same_state_and_runtime(store_dir, first):
    path = store_dir / _store.STORE_FILENAME
    alive = _sleeper()
    try:
        keys = _write_cases(path, alive)
        # Before any Python reader on this host looked, SQL has only the heartbeat to go on.
        assert dict(db_rows(path, "SELECT id, state FROM runs"))["dead29"] == "running"
        readers = {"api": _from_api, "ls": _from_ls}
        _check(readers[first](store_dir), first)
        # A Python reader saw dead29's process gone and recorded it: every reader agrees.
        assert dict(db_rows(path, "SELECT id, state FROM run_records")) == {
            **{run_id: "running" for run_id in CASES}, "dead29": "crashed", "dead31": "crashed"}
        for name, reader in readers.items():
            _check(reader(store_dir), name)
        for name, found in _from_sql(path).items():
            _check(found, name, ids=found)
        _check(_from_ui(path, keys), "status.json")
        _check(_from_live_state(path, keys), "live_state")
        # Shown crashed (silent for 31 s), yet its process is there: nobody takes it over.
        with pytest.raises(runstore.UsageError, match=f"process {alive.pid}"):
            runstore.init(entity="me", project="agree", id="alive31", dir=store_dir,
                          resume="must", settings=SETTINGS)
    finally:
        alive.kill()
        alive.wait()
    assert set(_from_sql(path)["runs_with_config_value"]) == set(CASES)
    assert set(_from_sql(path)["best_run_per_project"]) <= set(CASES)


def test_python_and_sql_share_the_heartbeat_rule(store_dir):
    path = store_dir / _store.STORE_FILENAME
    conn = _store.connect(path)
    view = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    assert f"* 86400.0 > {int(_store.STALE_AFTER_S)}" in view
    for age in (_store.STALE_AFTER_S - 1, _store.STALE_AFTER_S + 1):
        row = {"entity": "me", "project": "p", "id": f"a{age:g}", "name": "n",
               "created_at": _stamp(age + 1), "heartbeat_at": _stamp(age), "host": "far"}
        key = _store.insert_run(conn, row)
        (shown,) = conn.execute("SELECT state FROM runs WHERE run_key = ?", (key,)).fetchone()
        assert shown == _store.shown_state({**row, "state": "running"})
        assert _store.is_live({**row, "state": "running"}) == (shown == "running")
    conn.close()


# -- the UI: a run that is not live stops counting ----------------------------------------

@pytest.mark.ui
def test_run_page_runtime_stops_at_the_last_sign_of_life(store_dir):
    path = store_dir / _store.STORE_FILENAME
    conn = _store.connect(path)
    # Killed 3 minutes ago, 2 s after it started, before it recorded a runtime.
    killed = _store.insert_run(conn, {
        "entity": "me", "project": "p", "id": "killed", "name": "killed",
        "created_at": _stamp(182), "heartbeat_at": _stamp(180), "host": HERE,
        "pid": _dead_pid()})
    # Live elsewhere: 12.5 s recorded at its heartbeat 1 s ago.
    live = _store.insert_run(conn, {
        "entity": "me", "project": "p", "id": "live", "name": "live",
        "created_at": _stamp(600), "heartbeat_at": _stamp(1), "runtime": 12.5,
        "host": "another-machine", "pid": 1})
    conn.close()

    killed_page, killed_status, live_page, live_status = ui_get(
        path, run_url(killed), run_url(killed) + "/status.json", run_url(live),
        run_url(live) + "/status.json")
    data = _page_data(killed_page.text)
    assert data["live"] is False and data["runtime"] == pytest.approx(LIVED, abs=0.01)
    assert _header_runtime(killed_page.text) == "2.0s"
    assert killed_status.json()["state"] == "crashed"
    assert killed_status.json()["runtime"] == pytest.approx(LIVED, abs=0.01)
    assert killed_status.json()["runtime_text"] == "2.0s"
    data = _page_data(live_page.text)
    assert data["live"] is True and data["runtime"] == 12.5
    assert _header_runtime(live_page.text) == "12s"
    assert live_status.json()["runtime"] == 12.5


def _page_data(html: str) -> dict[str, Any]:
    return json.loads(html.split('id="runstore-page-data">', 1)[1].split("</script>")[0])


def _header_runtime(html: str) -> str:
    return html.split('data-runstore-runtime="', 1)[1].split(">", 1)[1].split("<", 1)[0]


# -- the schema: the runs view over run_records -------------------------------------------

def test_runs_view_has_the_tables_columns_and_passes_writes_through(store_dir):
    path = store_dir / _store.STORE_FILENAME
    conn = _store.connect(path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(run_records)")]
    assert [r[1] for r in conn.execute("PRAGMA table_info(runs)")] == columns
    assert set(_store.RUN_COLUMNS) <= set(columns)
    assert dict(conn.execute(
        "SELECT name, type FROM sqlite_master WHERE name IN ('runs', 'run_records')"
    ).fetchall()) == {"runs": "view", "run_records": "table"}
    for table in ("steps", "run_events", "run_files", "console_lines", "system_metrics",
                  "run_records"):
        parents = {r[2] for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
        assert parents - {"blobs"} == {"run_records"}, table
    # Every column written through the view lands in the table.
    conn.execute("INSERT INTO runs (entity, project, id, name, created_at, heartbeat_at) "
                 "VALUES ('me', 'p', 'sql', 'by hand', ?, ?)", (_stamp(100), _stamp(90)))
    (key, state, tags) = conn.execute(
        "SELECT run_key, state, tags FROM run_records WHERE id = 'sql'").fetchone()
    assert (state, tags) == ("running", "[]")
    for column in columns:
        if column in ("run_key", "entity", "project", "id", "created_at", "state"):
            continue
        new = key if column == "parent_run_key" else f"v-{column}"  # a key to a run
        conn.execute(f"UPDATE runs SET {column} = ? WHERE run_key = ?", (new, key))
        (value,) = conn.execute(f"SELECT {column} FROM run_records WHERE run_key = ?",
                                (key,)).fetchone()
        assert value == new, column
    # The state it shows (crashed: silent for 90 s), written back, stays as recorded.
    conn.execute("UPDATE runs SET heartbeat_at = ? WHERE run_key = ?", (_stamp(90), key))
    conn.execute("UPDATE runs SET state = state, notes = 'n' WHERE run_key = ?", (key,))
    assert conn.execute("SELECT r.state, v.state FROM run_records r JOIN runs v USING "
                        "(run_key) WHERE run_key = ?", (key,)).fetchone() == \
        ("running", "crashed")
    conn.execute("UPDATE runs SET state = 'failed' WHERE run_key = ?", (key,))
    assert conn.execute("SELECT state FROM run_records WHERE run_key = ?",
                        (key,)).fetchone() == ("failed",)
    conn.execute("DELETE FROM runs WHERE run_key = ?", (key,))
    assert conn.execute("SELECT count(*) FROM run_records").fetchone() == (0,)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def test_a_version_1_store_upgrades_to_the_runs_view(tmp_path):
    import shutil

    store = tmp_path / "old"
    store.mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "store_v1.db", store / _store.STORE_FILENAME)
    path = store / _store.STORE_FILENAME
    before = db_rows(path, "SELECT run_key, id, state, runtime, config FROM runs")
    _store.connect(path).close()
    assert db_rows(path, "SELECT run_key, id, state, runtime, config FROM runs") == before
    assert db_rows(path, "SELECT run_key, id, state, runtime, config FROM run_records") == before
    assert db_rows(path, "PRAGMA foreign_key_check") == []
    assert db_rows(path, "PRAGMA integrity_check") == [("ok",)]


def test_import_runstore_does_not_import_psutil():
    code = "import sys, runstore; print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=_child_env()).stdout
    assert out.strip() == "False"
