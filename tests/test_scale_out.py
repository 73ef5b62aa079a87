"""Past one laptop: never SQLite over a network filesystem; nodes publish, a hub merges."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import runstore
from helpers import db_rows, query
from runstore import _filesystems, _hub
from runstore._cli import main
from runstore._store import _publish


def points(path: Path, run_id: str | None = None) -> list[tuple]:
    """Every point of a store (of one run), as (run id, key, step, value, value_json)."""
    sql = ("SELECT r.id, k.key, h.step, h.value, h.value_json FROM history h"
           " JOIN run_records r USING (run_key) JOIN metric_keys k USING (key_id)")
    if run_id is not None:
        return db_rows(path, sql + " WHERE r.id = ? ORDER BY 1, 2, 3", (run_id,))
    return db_rows(path, sql + " ORDER BY 1, 2, 3")


def node_store(node: Path) -> Path:
    (store,) = node.glob("offline-run-*/runstore.db")
    return store


# -- 1. never SQLite on a network filesystem ---------------------------------------------


def test_this_machines_disks_are_local():
    assert _filesystems.network_filesystem("/") is None
    assert _filesystems.network_filesystem(Path.cwd() / "not" / "made" / "yet") is None


@pytest.fixture
def on_nfs(monkeypatch, tmp_path):
    """The store's directory reads as NFS (the filesystem type faked); node-local disk is
    tmp_path/local ($TMPDIR)."""
    shared = tmp_path / "shared"
    real = _filesystems.network_filesystem

    def fake(path):
        return "nfs4" if Path(path).resolve().is_relative_to(shared) else real(path)

    monkeypatch.setattr(_filesystems, "network_filesystem", fake)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "local"))
    monkeypatch.delenv("SLURM_TMPDIR", raising=False)
    return shared


def test_a_store_on_nfs_is_not_written_the_run_goes_to_local_disk(on_nfs, tmp_path):
    with pytest.warns(UserWarning, match=r"is on nfs4, a network filesystem.*RUNSTORE_PUBLISH"):
        run = runstore.init(project="p", dir=on_nfs)
    run.log({"loss": 1.0})
    run.finish()
    assert not (on_nfs / "runstore.db").exists()
    (local,) = (tmp_path / "local" / "runstore").glob("offline-run-*/runstore.db")
    assert db_rows(local, "SELECT id, state FROM runs") == [(run.id, "finished")]
    assert run.offline


def test_slurm_tmpdir_is_preferred_and_the_check_can_be_turned_off(on_nfs, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("SLURM_TMPDIR", str(tmp_path / "slurm"))
    with pytest.warns(UserWarning, match="slurm"):
        runstore.init(project="p", dir=on_nfs, mode="offline").finish()
    assert list((tmp_path / "slurm" / "runstore").glob("offline-run-*"))
    monkeypatch.setenv("RUNSTORE_ALLOW_NETWORK_FILESYSTEM", "true")
    run = runstore.init(project="p", dir=on_nfs)
    run.finish()
    assert query(on_nfs, "SELECT id FROM runs") == [(run.id,)]


# -- 2. nodes publish, the hub merges -------------------------------------------------------


def publish_run(node: Path, inbox: Path, steps: int = 300, interval: float = 0.2,
                pause_every: int = 100) -> str:
    run = runstore.init(project="p", dir=node, settings={
        "publish_dir": str(inbox), "publish_interval": interval})
    for i in range(steps):
        run.log({"loss": 1.0 / (i + 1), "step_int": i, "note": f"s{i}"})
        if i % pause_every == pause_every - 1:
            time.sleep(interval * 1.5)
    run.finish()
    return run.id


def test_a_run_publishes_deltas_and_the_hub_merges_them_exactly(tmp_path):
    inbox = tmp_path / "inbox"
    run_id = publish_run(tmp_path / "node", inbox)
    files = sorted(inbox.glob("*.db"))
    assert len(files) >= 3 and not list(inbox.glob("*.tmp"))
    held = [db_rows(f, "SELECT value FROM publish_meta WHERE key = 'points'")[0][0]
            for f in files]
    assert sum(held) == 900 and max(held) < 900  # deltas, not the whole run each time
    assert db_rows(files[-1], "SELECT value FROM publish_meta WHERE key = 'final'") == [(1,)]
    hub_store = tmp_path / "hub" / "runstore.db"
    hub = _hub.Hub(hub_store, say=lambda _: None)
    _hub._collect(inbox, hub.archive)
    assert hub.merge_archive() == len(files)
    hub.close()
    assert not list(inbox.iterdir())  # moved to the archive
    assert points(hub_store) == points(node_store(tmp_path / "node"))
    assert db_rows(hub_store, "SELECT id, state FROM runs") == [(run_id, "finished")]
    # the hub's blocks (chart summaries) are whole
    assert db_rows(hub_store, "SELECT sum(n) FROM history_blocks WHERE key_id = (SELECT "
                              "key_id FROM metric_keys WHERE key = 'loss')") == [(300,)]


def test_duplicates_out_of_order_and_leftover_tmp_files_change_nothing(tmp_path):
    inbox = tmp_path / "inbox"
    publish_run(tmp_path / "node", inbox)
    files = sorted(inbox.glob("*.db"))
    expected = points(node_store(tmp_path / "node"))
    archive = tmp_path / "archive"
    archive.mkdir()
    for f in files:  # the same file re-published under another name, and a .tmp left over
        shutil.copy(f, archive / f"again-{f.name}")
    (inbox / "half-written.db.tmp").write_bytes(b"SQLite format 3\0 and then nothing")
    hub_store = tmp_path / "hub" / "runstore.db"
    for f in reversed(files):  # newest first: a late file must not undo a newer one
        shutil.move(f, archive / f.name)
    hub = _hub.Hub(hub_store, archive, say=lambda _: None)
    hub.merge_archive()
    _hub._collect(inbox, archive)
    hub.merge_archive()
    hub.close()
    assert points(hub_store) == expected
    assert db_rows(hub_store, "SELECT state FROM runs") == [("finished",)]
    assert (inbox / "half-written.db.tmp").exists()
    assert db_rows(hub_store, "SELECT count(*) FROM published_files") == [(2 * len(files),)]
    # the archive rebuilds the same store from scratch
    rebuilt = tmp_path / "rebuilt" / "runstore.db"
    made = CliRunner().invoke(main, ["sync", "--rebuild", "--dir", str(rebuilt.parent),
                                     "--archive", str(archive)])
    assert made.exit_code == 0, made.output
    assert f"rebuilt {rebuilt} from {2 * len(files)} published file(s)" in made.output
    assert points(rebuilt) == expected
    again = CliRunner().invoke(main, ["sync", "--rebuild", "--dir", str(rebuilt.parent),
                                      "--archive", str(archive)])
    assert again.exit_code != 0 and "exists" in again.output


def test_a_run_that_stops_publishing_becomes_crashed(tmp_path):
    inbox = tmp_path / "inbox"
    code = f"""
        import os, signal, runstore
        run = runstore.init(project="p", dir={str(tmp_path / 'node')!r}, settings={{
            "publish_dir": {str(inbox)!r}, "publish_interval": 0.1}})
        for i in range(50):
            run.log({{"loss": float(i)}})
        import time
        while not os.path.isdir({str(inbox)!r}) or len(
                [f for f in os.listdir({str(inbox)!r}) if f.endswith(".db")]) < 2:
            time.sleep(0.05)  # published twice: the second file holds all 50 steps
        os.kill(os.getpid(), signal.SIGKILL)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], timeout=60,
                          env={**os.environ, "RUNSTORE_SILENT": "true"})
    assert proc.returncode == -9
    hub_store = tmp_path / "hub" / "runstore.db"
    hub = _hub.Hub(hub_store, say=lambda _: None)
    _hub._collect(inbox, hub.archive)
    hub.merge_archive()
    assert db_rows(hub_store, "SELECT state FROM run_records") == [("running",)]
    assert _publish.keep_alive(hub.conn, "2026-01-01T00:00:00", 60.0) == []
    time.sleep(0.3)
    crashed = _publish.keep_alive(hub.conn, "2026-01-01T00:00:00", 0.2)
    hub.close()
    assert len(crashed) == 1
    assert db_rows(hub_store, "SELECT state FROM runs") == [("crashed",)]
    assert len(points(hub_store)) == 50  # its published prefix: here all it logged


def test_sigterm_at_a_time_limit_finishes_and_publishes_the_run_a_last_time(tmp_path):
    inbox = tmp_path / "inbox"
    code = f"""
        import time, runstore
        run = runstore.init(project="p", dir={str(tmp_path / 'node')!r}, settings={{
            "publish_dir": {str(inbox)!r}, "publish_interval": 3600}})
        for i in range(100):
            run.log({{"loss": float(i)}})
        print("ready", flush=True)
        # A training loop's steps, not one long sleep: the store's migration imported
        # numpy (sqlite-utils does), whose native threads do not block SIGTERM, and a
        # signal the kernel gives one of them reaches Python only when the main thread
        # next runs bytecode (docs/RELIABILITY.md); one 60 s sleep hung this test 1 time
        # in ~50 under load.
        for _ in range(600):
            time.sleep(0.1)
    """
    proc = start(code)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)  # what SLURM sends at the time limit
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    (last,) = inbox.glob("*.db")  # the interval never came: the final file only
    assert dict(db_rows(last, "SELECT key, value FROM publish_meta"))["final"] == 1
    assert db_rows(last, "SELECT state, exit_code FROM run_records") == [("failed", 143)]
    assert db_rows(last, "SELECT count(*) FROM history") == [(100,)]


def test_publish_settings_are_checked(tmp_path):
    with pytest.raises(runstore.UsageError, match="publish_interval"):
        runstore.init(dir=tmp_path, settings={"publish_dir": str(tmp_path / "in"),
                                              "publish_interval": 0})
    assert not (tmp_path / "runstore.db").exists()


# -- 4. a cluster, simulated -----------------------------------------------------------------

NODE = """
    import os, sys, time, runstore
    node, inbox, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = runstore.init(project="cluster", dir=node, name=os.path.basename(node), settings={
        "publish_dir": inbox, "publish_interval": 0.3})
    print(run.id, flush=True)
    for i in range(steps):
        run.log({"loss": 1.0 / (i + 1), "lr": 0.1, "i": i})
        if i % 50 == 0:
            time.sleep(0.05)
    run.finish()
"""

HUB = """
    import sys
    from runstore import _hub
    from runstore._cli import main
    _hub.POLL_S = 0.1
    inbox, store, silent = sys.argv[1:4]
    main(["sync", "--watch", inbox, "--dir", store, "--crashed-after", silent])
"""


def start(code: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_eight_nodes_publish_while_the_hub_merges_and_is_killed(tmp_path):
    inbox, hub_dir = tmp_path / "inbox", tmp_path / "hub"
    hub_store = hub_dir / "runstore.db"
    inbox.mkdir()
    nodes = [tmp_path / f"node{i}" for i in range(8)]
    writers = [start(NODE, str(n), str(inbox), "3000" if i else "100000")
               for i, n in enumerate(nodes)]
    hub = start(HUB, str(inbox), str(hub_dir), "3")
    victim = writers[0]  # the long one: killed mid-run, once it has published twice
    victim_id = victim.stdout.readline().strip()
    archive = hub_store.parent / "published"
    deadline = time.monotonic() + 60
    while len(list(inbox.glob(f"{victim_id}.*.db")) + list(archive.glob(f"{victim_id}.*.db"))
              ) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    hub.send_signal(signal.SIGKILL)  # the hub dies too, mid-merge or between
    hub.wait(timeout=30)
    for w in writers[1:]:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    victim.wait(timeout=30)
    hub = start(HUB, str(inbox), str(hub_dir), "3")  # restarted: resumes
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if hub_store.exists() and not list(inbox.glob("*.db")) and db_rows(
                hub_store, "SELECT count(*) FROM runs WHERE state = 'running'") == [(0,)] \
                and len(db_rows(hub_store, "SELECT id FROM runs")) == 8:
            break
    hub.send_signal(signal.SIGTERM)
    out, err = hub.communicate(timeout=30)
    assert hub.returncode == 0, err
    assert "merged" in out and "stopped; merged" in out
    states = dict(db_rows(hub_store, "SELECT name, state FROM runs"))
    assert states == {**{f"node{i}": "finished" for i in range(1, 8)}, "node0": "crashed"}
    for i, node in enumerate(nodes):
        local = node_store(node)
        (run_id,) = db_rows(local, "SELECT id FROM runs")[0]
        here, there = points(hub_store, run_id), points(local, run_id)
        if i:
            assert here == there  # every point, once
        else:  # the killed node: a prefix of what it wrote, published before it died
            assert here and set(here) <= set(there)
            steps = sorted({p[2] for p in here})
            assert steps == list(range(len(steps)))  # a prefix: no step missing
    assert db_rows(hub_store, "PRAGMA integrity_check") == [("ok",)]


# -- what a hostile review found -----------------------------------------------------------


def test_bad_files_in_the_inbox_are_rejected_and_the_hub_goes_on(tmp_path):
    inbox = tmp_path / "inbox"
    publish_run(tmp_path / "node", inbox, steps=100, pause_every=1000)
    good = sorted(inbox.glob("*.db"))
    (inbox / "junk.db").write_text("not a database")
    (inbox / "empty.db").write_bytes(b"")
    (inbox / "dir.db").mkdir()
    (inbox / "link.db").symlink_to("/etc/hostname")
    other = sqlite3.connect(inbox / "other-schema.db")
    other.execute("CREATE TABLE t (x)")
    other.close()
    newer = tmp_path / "newer.db"
    shutil.copy(good[0], newer)
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 999")
    db.close()
    shutil.copy(newer, inbox / "newer.db")
    said: list[str] = []
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=said.append)
    hub.merge(_hub._collect(inbox, hub.archive, hub.say_once))
    hub.close()
    rejected = sorted(p.name for p in (hub.archive / "rejected").iterdir())
    assert rejected == ["empty.db", "junk.db", "newer.db", "other-schema.db"]
    assert any("schema version 999" in line for line in said)
    assert any("dir.db: not a regular file" in line for line in said)
    assert any("link.db: not a regular file" in line for line in said)
    assert (inbox / "dir.db").is_dir() and (inbox / "link.db").is_symlink()
    assert points(tmp_path / "hub" / "runstore.db") == points(node_store(tmp_path / "node"))
    # restarted, the hub does not trip on them again
    again: list[str] = []
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=again.append)
    assert hub.merge_archive() == 0 and again == []
    hub.close()


def test_a_run_file_saved_again_reaches_the_hub_with_its_new_content(tmp_path):
    inbox = tmp_path / "inbox"
    run = runstore.init(project="p", dir=tmp_path / "node", settings={
        "publish_dir": str(inbox), "publish_interval": 0.2})
    notes = tmp_path / "notes.txt"
    for version in ("first", "second"):
        notes.write_text(version)
        run.save(str(notes), base_path=str(tmp_path), policy="now")
        run.log({"x": 1.0})
        time.sleep(0.6)
    run.finish()
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=lambda _: None)
    hub.merge(_hub._collect(inbox, hub.archive))
    hub.close()
    (content,) = db_rows(tmp_path / "hub" / "runstore.db",
                         "SELECT b.content FROM run_files f JOIN blobs b USING (sha256) "
                         "WHERE f.path LIKE '%notes.txt'")[0]
    assert bytes(content) == b"second"


def test_a_second_run_with_a_published_id_is_refused_not_mixed_in(tmp_path):
    inbox = tmp_path / "inbox"
    for loss in (1.0, 2.0):  # a requeued job that reuses its id
        run = runstore.init(project="p", id="R", dir=tmp_path / f"node{loss}", settings={
            "publish_dir": str(inbox), "publish_interval": 3600})
        run.log({"loss": loss})
        run.finish()
    said: list[str] = []
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=said.append)
    hub.merge(_hub._collect(inbox, hub.archive))
    hub.close()
    assert db_rows(tmp_path / "hub" / "runstore.db", "SELECT h.value FROM history h") == [
        (1.0,)]
    assert any("second run given the same id" in line for line in said)
    assert len(list((hub.archive / "rejected").iterdir())) == 1


def test_a_node_clock_stepping_back_does_not_undo_a_finished_run(tmp_path):
    inbox = tmp_path / "inbox"
    publish_run(tmp_path / "node", inbox, steps=200, pause_every=100)
    files = sorted(inbox.glob("*.db"))
    for f in files[-2:]:  # the last files claim to be older than the first
        db = sqlite3.connect(f)
        db.execute("UPDATE publish_meta SET value = value - 10000000000 "
                   "WHERE key = 'published_ns'")
        db.commit()
        db.close()
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=lambda _: None)
    hub.merge(_hub._collect(inbox, hub.archive))
    assert _publish.keep_alive(hub.conn, "2026-01-01T00:00:00", 0.0) == []
    hub.close()
    assert db_rows(tmp_path / "hub" / "runstore.db", "SELECT state FROM runs") == [
        ("finished",)]


def test_same_name_other_content_is_kept_and_a_second_hub_is_refused(tmp_path):
    inbox = tmp_path / "inbox"
    publish_run(tmp_path / "a", inbox, steps=50, pause_every=1000)
    (first,) = sorted(inbox.glob("*.db"))[:1]
    hub = _hub.Hub(tmp_path / "hub" / "runstore.db", say=lambda _: None)
    hub.merge(_hub._collect(inbox, hub.archive))
    publish_run(tmp_path / "b", inbox, steps=50, pause_every=1000)
    for f in sorted(inbox.glob("*.db")):  # b's files under a's names
        f.rename(inbox / f"{first.stem}.{f.name}")
    clash = sorted(inbox.glob("*.db"))[0]
    clash.rename(inbox / first.name)
    hub.merge(_hub._collect(inbox, hub.archive))
    hub.close()
    assert len(db_rows(tmp_path / "hub" / "runstore.db", "SELECT id FROM runs")) == 2
    assert list(hub.archive.glob("*.again1.db"))
    # one hub per inbox: a second (live) hub is refused, with who holds it
    stop = threading.Event()
    first_hub = threading.Thread(target=_hub.watch, args=(inbox, tmp_path / "h1" /
                                                          "runstore.db"),
                                 kwargs={"stop": stop, "say": lambda _: None})
    first_hub.start()
    deadline = time.monotonic() + 30
    while not (inbox / ".hub").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (inbox / ".hub").write_text(json.dumps({"host": "elsewhere", "pid": 1,
                                            "store": "/x", "at": time.time()}))
    with pytest.raises(runstore.UsageError, match="another hub .* on elsewhere"):
        _hub.watch(inbox, tmp_path / "h2" / "runstore.db", say=lambda _: None)
    stop.set()
    first_hub.join(timeout=30)
