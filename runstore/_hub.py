"""The hub: `runstore sync --watch INBOX` merges what nodes publish into one store, and
`runstore sync --rebuild` makes that store again from the archive (docs/SCALE-OUT.md).

The hub is the only writer of its store, and the only hub of its inbox (`.hub` there
says which is). It moves each published file from the inbox into the archive beside the
store (a copy under a `.part` name, renamed, then the inbox file removed), and merges
from the archive: a hub killed at any point merges on restart what it had not, and
nothing twice (`published_files`). A file it cannot merge (not a published run, another
schema, a second run with the same id) goes to `<archive>/rejected/` with the reason in a
line of its output; the hub goes on with the others.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import _store
from ._errors import UsageError
from ._filesystems import network_filesystem
from ._settings import env_value
from ._store import _publish as stored
from ._sweep_hub import SweepDesk
from ._values import utc_now

POLL_S = 1.0
# A published run that sends no file for this long is recorded crashed (a node's
# default interval is 30 s: three missed files and a margin).
SILENT_AFTER_S = 120.0
# Another hub that said it watches the inbox within this long is taken to be alive.
HUB_ALIVE_S = 30.0


def archive_dir(store: Path) -> Path:
    return store.parent / "published"


def _inbox_files(inbox: Path, say_once: Callable[[str], None]) -> list[Path]:
    """The inbox's published files: regular `*.db` files (`.tmp` ones are being
    written). A symlink, directory or other odd entry is left alone, said once."""
    found = []
    with contextlib.suppress(FileNotFoundError), os.scandir(inbox) as entries:
        for entry in entries:
            if not entry.name.endswith(".db"):
                continue
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                say_once(f"{entry.name}: not a regular file; left in the inbox, not merged")
                continue
            found.append(Path(entry.path))
    return sorted(found)


def _collect(inbox: Path, archive: Path,
             say_once: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Move the inbox's published files into the archive; returns their archive paths.
    A file whose name is taken by different content is kept under a new name."""
    moved = []
    for path in _inbox_files(inbox, say_once):
        target = archive / path.name
        try:
            if target.exists() and filecmp.cmp(path, target, shallow=False):
                path.unlink()  # published twice, the same bytes
                continue
            n = 1
            while target.exists():
                target = archive / f"{path.stem}.again{n}.db"
                n += 1
            partial = archive / f"{target.name}.part"
            shutil.copyfile(path, partial)
            os.replace(partial, target)
            path.unlink()
            moved.append(target)
        except FileNotFoundError:  # a node re-publishing: next round
            continue
        except OSError as exc:
            say_once(f"{path.name}: cannot move it into the archive ({exc})")
    return moved


class Hub:
    """Merges an archive of published files into a store."""

    def __init__(self, store: Path, archive: Path | None = None,
                 say: Callable[[str], None] = print) -> None:
        network = None if env_value("allow_network_filesystem") else network_filesystem(
            store.parent)
        if network is not None:
            raise UsageError(f"{store.parent} is on {network}, a network filesystem: the hub's "
                             "store must be on the hub's local disk (the inbox may be "
                             "shared)")
        self.store = store
        self.archive = archive or archive_dir(store)
        self.archive.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.conn = _store.connect(store)
        self.done = stored.merged_names(self.conn)
        self.points = 0
        self._said: set[str] = set()

    def say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.say(message)

    def merge_archive(self) -> int:
        """Merge every archived file not merged yet (lists the whole archive)."""
        return self.merge(sorted(self.archive.glob("*.db")))

    def merge(self, paths: Iterable[Path]) -> int:
        """Merge these archived files, each in one transaction; returns how many."""
        count = 0
        for path in paths:
            if path.name in self.done:
                continue
            try:
                result = stored.merge_delta(self.conn, path, utc_now())
            except (sqlite3.OperationalError, OSError) as exc:  # the hub's store is busy,
                self.say_once(f"{path.name}: not merged yet ({exc}); trying again")  # full…
                continue
            except (UsageError, sqlite3.DatabaseError, KeyError, ValueError) as exc:
                self._reject(path, exc)  # the file itself is wrong
                continue
            self.done.add(path.name)
            if result["skipped"]:
                continue
            count += 1
            self.points += result["points"]
            self.say(f"merged {path.name}: {result['entity']}/{result['project']}/"
                     f"{result['id']} +{result['points']} points ({result['state']}"
                     f"{', final' if result['final'] else ''}); {self.points} points so far")
        return count

    def _reject(self, path: Path, exc: BaseException) -> None:
        """A file that cannot be merged leaves the archive for `rejected/`, said once."""
        rejected = self.archive / "rejected"
        rejected.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            os.replace(path, rejected / path.name)
        self.say(f"{path.name}: not merged, moved to {rejected}: {exc}")

    def close(self) -> None:
        self.conn.close()


def watch(inbox: Path, store: Path, archive: Path | None = None, *,
          poll_s: float | None = None, silent_after_s: float = SILENT_AFTER_S,
          say: Callable[[str], None] = print,
          stop: threading.Event | None = None) -> None:
    """Merge what arrives in `inbox` into `store` until stopped (SIGINT, SIGTERM or
    `stop`), keeping published runs' heartbeats while their files keep coming."""
    if not inbox.is_dir():
        raise UsageError(f"the inbox {inbox} is not a directory; create it, and point the "
                         "nodes' RUNSTORE_PUBLISH_DIR at it")
    stop = stop or threading.Event()
    hub = Hub(store, archive, say)
    try:
        _claim_inbox(inbox, store)
    except BaseException:
        hub.close()
        raise
    desk = SweepDesk(store, inbox, say)  # sweep agents on the nodes claim through the hub
    restore = _stop_on_signals(stop)
    say(f"watching {inbox}: merging into {store} (archive {hub.archive}); Ctrl+C stops")
    try:
        hub.merge_archive()  # what a hub killed earlier had archived, first
        while True:
            hub.merge(_collect(inbox, hub.archive, hub.say_once))
            for run_id in stored.keep_alive(hub.conn, utc_now(), silent_after_s):
                say(f"run {run_id} sent nothing for {silent_after_s:.0f} s: crashed")
            desk.serve()
            _claim_inbox(inbox, store)
            if stop.wait(POLL_S if poll_s is None else poll_s):
                break
    finally:
        restore()
        desk.close()
        hub.close()
        with contextlib.suppress(OSError):
            if json.loads((inbox / ".hub").read_text()).get("pid") == os.getpid():
                (inbox / ".hub").unlink()
    say(f"stopped; merged {hub.points} points")


def _claim_inbox(inbox: Path, store: Path) -> None:
    """Say in the inbox that this process is its hub; refuse if another hub said so
    recently (two hubs would split the files between two stores)."""
    marker = inbox / ".hub"
    me = {"host": socket.gethostname(), "pid": os.getpid(), "store": str(store)}
    try:
        other = json.loads(marker.read_text())
        age = time.time() - float(other.get("at", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        other, age = None, float("inf")
    mine = (other or {}).get("host") == me["host"]
    if other and age < HUB_ALIVE_S and other.get("pid") != me["pid"] and not (
            mine and not _store.pid_alive(other.get("pid"))):  # a hub here that died: over
        raise UsageError(f"another hub (process {other.get('pid')} on {other.get('host')}, "
                         f"merging into {other.get('store')}) watches {inbox}; one hub per "
                         f"inbox. If it is gone, wait {HUB_ALIVE_S:.0f} s or remove "
                         f"{marker}")
    partial = inbox / f".hub.{os.getpid()}.tmp"
    partial.write_text(json.dumps({**me, "at": time.time()}))
    os.replace(partial, marker)


def rebuild(store: Path, archive: Path | None = None,
            say: Callable[[str], None] = print) -> int:
    """Make `store` (which must not exist) from every archived file; returns files merged."""
    archive = archive or archive_dir(store)
    if store.exists():
        raise UsageError(f"{store} exists; --rebuild makes a new store from the archive "
                         "(move the old one aside first)")
    if not archive.is_dir():
        raise UsageError(f"no archive of published files at {archive}")
    hub = Hub(store, archive, say)
    try:
        return hub.merge_archive()
    finally:
        hub.close()


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)

    return restore
