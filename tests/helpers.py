"""Helpers the tests share: raw SQL against a store, git repositories, child processes
(scripts, `runstore ui`). Fixtures live in conftest.py; test files import these from here
(`from helpers import ...`), never from conftest."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def query(store_dir: Path, sql: str, params=()) -> list[tuple]:
    """Raw SQL against a store, with a connection of its own."""
    return db_rows(store_dir / "runstore.db", sql, params)


def wait_drained(store_dir: Path, timeout: float = 60.0) -> bool:
    """Wait until no run's hand-off ring is left beside the store: the writer process of
    a run that died has drained it into the store and removed it. False on timeout."""
    folder = store_dir / "runstore.db-handoff"
    deadline = time.monotonic() + timeout
    while any(folder.glob("*.ring")):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def db_rows(path: Path, sql: str, params=()) -> list[tuple]:
    """Raw SQL against the database file `path`, with a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def git_repo(path: Path, remote: str, script: str) -> Path:
    """A new git repository at `path`: branch main, one commit of train.py (`script`),
    remote origin at `remote`."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    (path / "train.py").write_text(script)
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    git(path, "remote", "add", "origin", remote)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(store_dir: Path, port: int) -> subprocess.Popen:
    """`runstore ui STORE_DIR --port PORT` as a real child process in its own process
    group, stdout and stderr together as text (unbuffered); end it with `stop_group`."""
    script = Path(sys.executable).with_name("runstore")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from runstore._cli import main; main()"
    ]
    return subprocess.Popen(
        [*command, "ui", str(store_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group of `proc` (started with start_new_session), SIGKILL
    after 10 s; closes its stdout."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def run_script(code: str, cwd: Path, env: dict | None = None, timeout: float = 60):
    """Run Python code in a real child process; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )
