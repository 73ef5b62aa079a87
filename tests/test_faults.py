"""Crashes and faults: what a killed process leaves, disk full, a store deleted or
replaced mid-run, and an old store kept as a fixture."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import warnings

import pytest
from click.testing import CliRunner

import runstore
from helpers import REPO, db_rows, query, wait_drained
from runstore import _store
from runstore._cli import main as cli

FIXTURE_V1 = REPO / "tests" / "fixtures" / "store_v1.db"


def test_sigkill_loses_nothing_and_shows_crashed(tmp_path, store_dir):
    code = textwrap.dedent(f"""
        import sys, time, runstore
        run = runstore.init(project="p", id="victim", dir={str(store_dir)!r}, resume="auto")
        i = 0
        while True:
            runstore.log({{"x": i}})
            print(i, time.time(), flush=True)
            i += 1
            time.sleep(0.002)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    while len(lines) < 300:
        lines.append(proc.stdout.readline().split())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    lines += [line.split() for line in proc.stdout.read().splitlines()]
    proc.stdout.close()
    proc.stderr.close()
    logged = {int(step) for step, _ in (line for line in lines if line)}
    # The read API sees at once that the process is gone.
    assert runstore.Api(store_dir).run("p/victim").state == "crashed"
    # Its writer process drains everything log() accepted, then marks the run crashed.
    assert wait_drained(store_dir)
    stored = {s for (s,) in query(store_dir, "SELECT step FROM history")}
    assert logged <= stored == set(range(len(stored))), "a step whose log() returned is lost"
    assert query(store_dir, "PRAGMA integrity_check") == [("ok",)]
    assert query(store_dir, "SELECT state FROM run_records") == [("crashed",)]
    listing = CliRunner().invoke(cli, ["ls", str(store_dir)])
    assert "crashed" in listing.output and "victim" in listing.output
    assert query(store_dir, "SELECT state FROM run_list") == [("crashed",)]
    assert query(store_dir, "SELECT state FROM runs") == [("crashed",)]
    # resume="auto" from the same directory picks the crashed run up.
    run = runstore.init(project="p", dir=store_dir, resume="auto")
    assert run.id == "victim" and run.step == len(stored)
    run.finish()
    assert runstore.Api(store_dir).run("p/victim").state == "finished"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_warns_and_keeps_what_was_written(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNSTORE_RING_ON_DISK", "1")  # the ring on the full disk too
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        run = runstore.init(project="p", id="full", dir=mount, settings={"sync_writes": True})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(10_000):  # 1 MB fills after a few thousand rows
                run.log({"x": float(i), "text": "y" * 50})
            run.finish()
        messages = " ".join(str(w.message) for w in caught)
        assert "full" in messages  # SQLite's "database or disk is full", said clearly
        conn = sqlite3.connect(f"file:{mount / 'runstore.db'}?mode=ro", uri=True)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (count,) = conn.execute("SELECT count(*) FROM history").fetchone()
        conn.close()
        assert 0 < count < 20_000
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_database_is_reported_as_full_without_root(store_dir):
    # PRAGMA max_page_count on the writer's own connection stands in for the tmpfs
    # above: the same SQLITE_FULL, raised inside the writer's transaction.
    # (A writer thread, whose connection the test can reach: the same Writer code.)
    run = runstore.init(project="p", id="full", dir=store_dir,
                        settings={"sync_writes": True, "writer_process": False})
    run.log({"x": -1.0})
    assert run._writer.flush()
    conn = run._writer._local._conn
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3000):
            run.log({"x": float(i), "text": "y" * 50})
        run.finish()
    messages = [str(w.message) for w in caught]
    assert messages and all("database or disk is full" in m for m in messages), messages
    assert not any("cannot rollback" in m or "savepoint" in m for m in messages), messages
    assert query(store_dir, "PRAGMA integrity_check") == [("ok",)]
    (count,) = query(store_dir, "SELECT count(*) FROM history")[0]
    assert 1 <= count < 3001


def _scratch_store(path):
    conn = _store.connect(path)
    conn.executescript("""
        CREATE TABLE scratch_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE scratch_child (
            parent INTEGER REFERENCES scratch_parent (id) DEFERRABLE INITIALLY DEFERRED);
        CREATE TABLE scratch_vetoed (id INTEGER);
        CREATE TRIGGER scratch_veto BEFORE INSERT ON scratch_vetoed
            BEGIN SELECT RAISE(ROLLBACK, 'vetoed'); END;
    """)
    return conn


def test_a_failed_commit_is_rolled_back_and_its_own_error_propagates(tmp_path):
    path = tmp_path / "runstore.db"
    conn = _scratch_store(path)
    # The deferred key is checked at COMMIT, so COMMIT itself fails.
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with _store.transaction(conn):
            conn.execute("INSERT INTO scratch_child VALUES (42)")
    assert not conn.in_transaction
    # The next block is a transaction of its own, not a savepoint in a dead one.
    with _store.transaction(conn):
        conn.execute("INSERT INTO scratch_parent VALUES (1)")
    assert db_rows(path, "SELECT id FROM scratch_parent") == [(1,)]
    assert db_rows(path, "SELECT count(*) FROM scratch_child") == [(0,)]
    conn.close()


def test_an_error_that_ends_the_transaction_propagates_from_a_nested_block(tmp_path):
    path = tmp_path / "runstore.db"
    conn = _scratch_store(path)
    # RAISE(ROLLBACK) destroys the whole transaction, savepoint included, as a full
    # disk can: the trigger's error, not "no such savepoint", reaches the caller.
    with pytest.raises(sqlite3.IntegrityError, match="vetoed"):
        with _store.transaction(conn):
            conn.execute("INSERT INTO scratch_parent VALUES (1)")
            with _store.transaction(conn):
                conn.execute("INSERT INTO scratch_vetoed VALUES (1)")
    assert not conn.in_transaction
    with _store.transaction(conn):
        with _store.transaction(conn):
            conn.execute("INSERT INTO scratch_parent VALUES (2)")
    assert db_rows(path, "SELECT id FROM scratch_parent") == [(2,)]
    conn.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_store_deleted_or_replaced_mid_run_is_rescued(tmp_path, store_dir, how):
    run = runstore.init(project="p", id="mover", dir=store_dir)
    for i in range(100):
        run.log({"x": i})
    run.save()
    for suffix in ("", "-wal", "-shm"):
        (store_dir / f"runstore.db{suffix}").unlink(missing_ok=True)
    if how == "replaced":
        runstore.init(project="other", dir=tmp_path / "elsewhere", reinit="create_new").finish()
        shutil.copy(tmp_path / "elsewhere" / "runstore.db", store_dir / "runstore.db")
    with pytest.warns(RuntimeWarning, match="deleted or replaced") as caught:
        for i in range(100, 150):
            run.log({"x": i})
        run.finish()
    (rescued,) = store_dir.glob("offline-run-*-mover")
    assert any(str(rescued) in str(w.message) for w in caught)
    saved = runstore.Api(rescued).run("p/mover")
    assert [r["x"] for r in saved.history()] == [float(i) for i in range(150)]
    assert saved.state == "finished"
    target = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["sync", str(rescued), "--dir", str(target)])
    assert result.exit_code == 0, result.output
    assert len(runstore.Api(target).run("p/mover").history()) == 150


def test_a_first_version_store_fixture_upgrades_in_place_and_resumes(tmp_path):
    store = tmp_path / "old"
    store.mkdir()
    shutil.copy(FIXTURE_V1, store / "runstore.db")
    old = runstore.Api(store).run("alice/mnist/v1run01")
    assert (old.name, old.state, old.config, old.tags) == (
        "old-owl-1", "finished", {"lr": 0.01}, ["baseline"])
    assert old.summary == {"loss": 0.5, "acc": 0.75}
    assert len(old.history()) == 200
    assert query(store, "PRAGMA user_version")[0][0] >= 5
    assert query(store, "SELECT count(*) FROM history_blocks") == [(2,)]
    run = runstore.init(entity="alice", project="mnist", id="v1run01", dir=store,
                        resume="must")
    assert run.step == 200
    run.log({"loss": 0.1})
    run.finish()
    again = runstore.Api(store).run("mnist/v1run01")
    assert len(again.history()) == 201 and again.summary["loss"] == 0.1
    assert query(store, "PRAGMA integrity_check") == [("ok",)]
