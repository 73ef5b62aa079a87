"""Offline runs, `runstore sync`, force=, save_code and the remaining init() arguments."""

from __future__ import annotations

import contextlib
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
from helpers import git_repo, query, run_script
from runstore import _store
from runstore._cli import main as cli

SCRIPT = """
import runstore
run = runstore.init(project="p", id="same", mode={mode!r}, dir={dir!r}, config={{"lr": 0.1}},
                    tags=["a", "b"], notes="n", group="g", job_type="train")
runstore.define_metric("acc", summary="max")
for i in range(50):
    runstore.log({{"loss": 1 / (i + 1), "acc": i % 7, "text": f"s{{i}}"}})
runstore.log({{"late": 1}}, step=60)
run.summary["best"] = 6
print(run.dir)
"""


@pytest.fixture
def repo(tmp_path):
    return git_repo(tmp_path / "repo", "https://example.com/me/repo.git", "print('hello')\n")


def comparable(api_run):
    meta = api_run.metadata
    history = [{k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")}
               for row in api_run.scan_history()]
    return (history, api_run.config, api_run.summary, api_run.tags, api_run.notes,
            api_run.group, api_run.job_type, api_run.state,
            [meta[k] for k in ("git_commit", "git_remote", "git_branch", "git_dirty")])


def test_offline_then_sync_equals_an_online_run(repo, tmp_path):
    online, offline = tmp_path / "online", tmp_path / "offline"
    for mode, target in (("online", online), ("offline", offline)):
        result = run_script(SCRIPT.format(mode=mode, dir=str(target)), cwd=repo)
        assert result.returncode == 0, result.stderr
    (run_dir,) = offline.glob("offline-run-*-same")
    assert not (offline / "runstore.db").exists()
    # The offline run is itself a browsable store.
    assert runstore.Api(run_dir).run("p/same").state == "finished"
    result = CliRunner().invoke(cli, ["sync", str(run_dir), "--dir", str(offline)])
    assert result.exit_code == 0, result.output
    synced = runstore.Api(offline).run("p/same")
    expected = comparable(runstore.Api(online).run("p/same"))
    assert comparable(synced) == expected
    assert expected[-1][0] is not None  # the git commit really was recorded
    # Idempotent: marked synced; forcing it again changes nothing.
    again = CliRunner().invoke(cli, ["sync", str(run_dir), "--dir", str(offline)])
    assert "already synced" in again.output
    forced = CliRunner().invoke(cli, ["sync", "--dir", str(offline), "--include-synced"])
    assert forced.exit_code == 0, forced.output
    assert comparable(runstore.Api(offline).run("p/same")) == expected
    assert query(offline, "SELECT count(*) FROM runs") == [(1,)]
    assert query(offline, "SELECT count(*) FROM history") == [
        (query(online, "SELECT count(*) FROM history")[0][0],)]
    cleaned = CliRunner().invoke(cli, ["sync", "--dir", str(offline), "--include-synced",
                                       "--clean"])
    assert cleaned.exit_code == 0 and not run_dir.exists()


def test_sync_of_a_sigkilled_offline_run_marks_it_crashed(tmp_path):
    store = tmp_path / "store"
    code = textwrap.dedent(f"""
        import runstore, time
        run = runstore.init(project="p", id="dies", mode="offline", dir={str(store)!r})
        for i in range(100):
            runstore.log({{"x": i}})
        run.save()
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (run_dir,) = store.glob("offline-run-*")
    result = CliRunner().invoke(cli, ["sync", "--dir", str(store), "--project", "moved"])
    assert result.exit_code == 0, result.output
    run = runstore.Api(store).run("moved/dies")
    assert run.state == "crashed" and len(run.history()) == 100


def test_sync_refuses_to_overwrite_a_different_run(new_run, store_dir, tmp_path):
    new_run(id="taken", project="p").finish()
    offline = runstore.init(project="p", id="taken", mode="offline", dir=tmp_path / "o")
    offline.finish()
    result = CliRunner().invoke(cli, ["sync", offline.dir, "--dir", str(store_dir)])
    assert result.exit_code == 1 and "already exists" in result.output
    ok = CliRunner().invoke(cli, ["sync", offline.dir, "--dir", str(store_dir),
                                  "--project", "other"])
    assert ok.exit_code == 0, ok.output
    assert len(runstore.Api(store_dir).runs()) == 2


def test_dryrun_is_offline_and_resume_is_ignored_offline(tmp_path):
    run = runstore.init(project="p", mode="dryrun", dir=tmp_path / "s")
    assert run.offline and "offline-run-" in run.dir
    run.finish()
    with pytest.warns(UserWarning, match="resume is ignored offline"):
        runstore.init(project="p", mode="offline", dir=tmp_path / "s", resume="allow").finish()
    with pytest.raises(runstore.UsageError, match="mode='online'"):
        runstore.init(project="p", mode="offline", dir=tmp_path / "s", fork_from="x?_step=1")


@contextlib.contextmanager
def read_only(path):
    """A directory nobody, not even root, can write into."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)


def _unwritable_stores(tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    not_db = tmp_path / "notdb"
    not_db.mkdir()
    (not_db / "runstore.db").write_bytes(b"this is not a database, just text" * 100)
    newer = tmp_path / "newer"
    conn = _store.connect(newer / "runstore.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    return {"read-only directory": readonly, "not a database": not_db, "newer schema": newer}


@pytest.mark.parametrize("case", ["read-only directory", "not a database", "newer schema"])
def test_force_raises_and_default_falls_back_offline(tmp_path, case):
    store = _unwritable_stores(tmp_path)[case]
    before = sorted(p.name for p in store.iterdir())
    guard = read_only(store) if case == "read-only directory" else contextlib.nullcontext()
    with guard:
        with pytest.raises(runstore.CommError, match=str(store)):
            runstore.init(project="p", dir=store, force=True)
        with pytest.warns(UserWarning, match="logging this run offline instead"):
            run = runstore.init(project="p", dir=store)
        run.log({"x": 1})
        run.finish()
        assert run.offline
        assert sorted(p.name for p in store.iterdir() if not p.name.startswith("offline-")) \
            == before
    synced = runstore.Api(run.dir).run(f"p/{run.id}")
    assert synced.history() and synced.state == "finished"
    if case == "read-only directory":
        assert not run.dir.startswith(str(store))  # went to the temporary directory
        shutil.rmtree(os.path.dirname(run.dir), ignore_errors=True)


def test_save_code_stores_program_and_diff_deduplicated(repo, tmp_path):
    store = tmp_path / "store"
    script = repo / "train.py"
    script.write_text(textwrap.dedent(f"""
        import runstore
        runstore.init(project="p", dir={str(store)!r}, save_code=True).finish()
    """))
    for _ in range(2):
        result = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(store / "runstore.db")
    files = conn.execute("SELECT run_key, path, kind FROM run_files ORDER BY run_key, path")
    assert [row[1:] for row in files] == [("code/train.py", "code"), ("diff.patch", "diff")] * 2
    assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (2,)  # deduplicated
    (diff,) = conn.execute("SELECT b.content FROM blobs b JOIN run_files f USING (sha256) "
                           "WHERE f.kind = 'diff' LIMIT 1").fetchone()
    assert b"+import runstore" in diff
    conn.close()
    env = {**os.environ, "RUNSTORE_DISABLE_CODE": "true"}
    subprocess.run([sys.executable, "train.py"], cwd=repo, env=env, check=True)
    assert query(store, "SELECT count(*) FROM run_files") == [(4,)]


def test_save_code_is_off_by_default(new_run, store_dir):
    new_run().finish()
    assert query(store_dir, "SELECT count(*) FROM run_files") == [(0,)]


def test_magic_warns_once(new_run):
    import runstore._init as init_module

    init_module._warned_magic = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new_run(magic=True).finish()
        new_run(magic=True).finish()
    assert sum("magic" in str(w.message) for w in caught) == 1
