"""The hub: `runstore sync --watch INBOX` merges what nodes publish into one store, and
`runstore sync --rebuild` makes that store again from the archive (docs/SCALE-OUT.md).

The hub is the only writer of its store. It moves each published file from the inbox
into the archive beside the store (a copy under a `.part` name, renamed, then the inbox
file removed), and merges from the archive: a hub killed at any point merges on restart
what it had not, and nothing twice (`published_files`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from . import _store
from ._errors import UsageError
from ._store import _publish as stored
from ._sweep_hub import SweepDesk
from ._values import utc_now

POLL_S = 1.0
# A published run that sends no file for this long is recorded crashed (a node's
# default interval is 30 s: three missed files and a margin).
SILENT_AFTER_S = 120.0


def archive_dir(store: Path) -> Path:
    return store.parent / "published"


def _collect(inbox: Path, archive: Path) -> None:
    """Move the inbox's published files into the archive (`.tmp` files are being
    written: left alone)."""
    for path in sorted(inbox.glob("*.db")):
        target = archive / path.name
        try:
            if not (target.exists() and target.stat().st_size == path.stat().st_size):
                partial = archive / f"{path.name}.part"
                shutil.copyfile(path, partial)
                os.replace(partial, target)
            path.unlink()
        except FileNotFoundError:  # another hub, or a node re-publishing: next round
            continue


def _pending(archive: Path, done: set[str]) -> Iterator[Path]:
    for path in sorted(archive.glob("*.db")):
        if path.name not in done:
            yield path


class Hub:
    """Merges an archive of published files into a store."""

    def __init__(self, store: Path, archive: Path | None = None,
                 say: Callable[[str], None] = print) -> None:
        self.store = store
        self.archive = archive or archive_dir(store)
        self.archive.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.conn = _store.connect(store)
        self.done = stored.merged_names(self.conn)
        self.points = 0

    def merge_archive(self) -> int:
        """Merge every archived file not merged yet; returns how many."""
        count = 0
        for path in _pending(self.archive, self.done):
            try:
                result = stored.merge_delta(self.conn, path, utc_now())
            except UsageError as exc:
                self.say(f"{path.name}: not merged: {exc}")
                self.done.add(path.name)
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
    desk = SweepDesk(store, inbox, say)  # sweep agents on the nodes claim through the hub
    restore = _stop_on_signals(stop)
    say(f"watching {inbox}: merging into {store} (archive {hub.archive}); Ctrl+C stops")
    try:
        while True:
            hub.merge_archive()  # what a hub killed earlier had archived, first
            _collect(inbox, hub.archive)
            hub.merge_archive()
            for run_id in stored.keep_alive(hub.conn, utc_now(), silent_after_s):
                say(f"run {run_id} sent nothing for {silent_after_s:.0f} s: crashed")
            desk.serve()
            if stop.wait(POLL_S if poll_s is None else poll_s):
                break
    finally:
        restore()
        desk.close()
        hub.close()
    say(f"stopped; merged {hub.points} points")


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
