"""The background writer: one thread per run that owns the run's connection.

log() appends to a bounded in-memory queue and returns. The writer takes
whatever has arrived, writes it in one transaction, commits, and goes again, so
each batch is what came in while the previous commit ran: a SIGKILL loses only
the last few milliseconds. When the queue is full, producers wait (memory stays
bounded, nothing is dropped).
"""

from __future__ import annotations

import collections
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import _store
from ._offline import new_offline_store
from ._values import JsonText, MediaText, storable_text, warn

BATCH_MAX = 5_000
HEARTBEAT_S = 5.0


def _inode(path: Path | None) -> int | None:
    try:
        return None if path is None else os.stat(path).st_ino
    except OSError:
        return None


def utc_now() -> str:
    """Now as ISO-8601 UTC text, as the store keeps times."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _point(run_key: int, key_id: int, step: int, value: Any) -> tuple:
    """A history row for a value that is not a plain number: JSON text (media are
    their description; the bytes go to blobs), or NaN (which SQLite would store as
    NULL in a REAL column)."""
    if isinstance(value, JsonText):
        return (run_key, key_id, step, None, str(value))
    return (run_key, key_id, step, None, "NaN")


class Writer:
    """Drains rows and run updates for one run into the store."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        run_key: int,
        heartbeat: Callable[[], dict[str, Any]],
        maxsize: int = 10_000,
        path: Path | None = None,
        run_id: str = "run",
    ) -> None:
        self._conn = conn
        self._path = path
        self._run_id = run_id
        self._inode = _inode(path)
        self._run_key = run_key
        self._heartbeat = heartbeat
        self._maxsize = maxsize
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._idle = False
        self._stopping = False
        self._keys: dict[str, int] = {}
        self._lost_steps = 0
        self._failures: set[str] = set()
        self._bad_keys: set[str] = set()
        self._last_beat = 0.0
        self._thread = threading.Thread(target=self._loop, name="runstore-writer", daemon=True)
        self._thread.start()

    # -- producer side (the training loop's thread) --------------------------

    def put_row(self, step: int, timestamp: float, runtime: float, row: dict) -> None:
        """Queue one committed history row."""
        self._put(("row", step, timestamp, runtime, row))

    def put_run(self, fields: dict[str, Any]) -> None:
        """Queue an update of run columns (applied in order with the rows)."""
        self._put(("run", fields))

    def put_console(self, stream: str, at: float, line: str) -> None:
        """Queue one line the run printed."""
        self._put(("console", stream, at, line))

    def put_system(self, at: float, sample: dict[str, float]) -> None:
        """Queue one sample of system metrics."""
        self._put(("system", at, sample))

    def put_file(self, path: str, kind: str, content: bytes) -> None:
        """Queue a file to keep with the run (deduplicated by content)."""
        self._put(("file", path, kind, content))

    def _put(self, item: tuple) -> None:
        queue = self._queue
        if len(queue) >= self._maxsize:
            with self._space:
                while len(queue) >= self._maxsize and self._thread.is_alive():
                    self._space.wait(0.05)
        queue.append(item)
        if self._idle:
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is committed."""
        if not self._thread.is_alive():
            return not self._queue
        done = threading.Event()
        self._put(("barrier", done))
        return done.wait(timeout)

    def close(self) -> None:
        """Write everything still queued, then stop the thread and close the connection."""
        self._stopping = True
        self._put(("stop",))
        self._thread.join()
        if self._lost_steps:
            warn(f"{self._lost_steps} steps of run {self._run_id} could not be written to the "
                 f"store ({'; '.join(sorted(self._failures))})")

    # -- the writer thread ------------------------------------------------------

    def _loop(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle = True
                if not queue:
                    self._wake.wait(HEARTBEAT_S if not self._stopping else 0.05)
                self._idle = False
                self._wake.clear()
                if not queue:
                    self._beat_if_due()
                    continue
            batch = []
            while queue and len(batch) < BATCH_MAX:
                batch.append(queue.popleft())
            with self._space:
                self._space.notify_all()
            try:
                stop = self._write(batch)
            except Exception as exc:  # the writer must outlive any one bad batch
                warn(f"could not write to the store ({exc!r}); this batch is lost")
                stop = any(item[0] == "stop" for item in batch)
            for item in batch:
                if item[0] == "barrier":
                    item[1].set()
            if stop:
                self._conn.close()
                return

    def _beat_if_due(self) -> None:
        if time.monotonic() - self._last_beat >= HEARTBEAT_S:
            self._write([])

    def _rescue_if_moved(self) -> None:
        """If the store file was deleted or replaced under us, save everything this
        connection holds to an offline store and carry on writing there."""
        if self._path is None or _inode(self._path) == self._inode:
            return
        target = new_offline_store(self._path.parent, self._run_id)
        self._conn.execute("VACUUM INTO ?", (str(target),))
        self._conn.close()
        self._conn = _store.connect(target)
        self._path, self._inode = target, _inode(target)
        warn(f"the store was deleted or replaced while run {self._run_id} was writing to it; "
             f"everything written so far is saved in {target} and logging continues there "
             f"(merge it into a store with: runstore sync {target.parent})")

    def _write(self, batch: list[tuple]) -> bool:
        self._rescue_if_moved()
        steps, points, fields, stop = [], [], {}, False
        run_key = self._run_key
        rows, console, system, files = [], [], [], []
        for item in batch:
            kind = item[0]
            if kind == "row":
                _, step, ts, runtime, row = item
                steps.append((run_key, step, ts, runtime))
                rows.append((step, row))
            elif kind == "run":
                fields.update(item[1])
            elif kind == "console":
                console.append(item[1:])
            elif kind == "system":
                system.append(item[1:])
            elif kind == "file":
                files.append((*item[1:], utc_now()))
            elif kind == "stop":
                stop = True
        files += [(v.path, "media", v.blob, utc_now()) for _, row in rows
                  for v in row.values() if type(v) is MediaText]
        fields = {**self._heartbeat(), **fields}
        keys = self._keys
        new = {k for _, row in rows for k in row if k not in keys}
        unstorable = {k for k in new if not storable_text(k)}
        if unstorable:  # log()'s fast path leaves key checks to the first time a key is seen
            if not unstorable <= self._bad_keys:
                warn(f"metric keys {sorted(map(repr, unstorable))} are not storable text "
                     "(lone surrogates); their values are skipped")
                self._bad_keys |= unstorable
            new -= unstorable
            rows = [(step, {k: v for k, v in row.items() if k not in unstorable})
                    for step, row in rows]
        known = set(keys)
        try:
            with _store.transaction(self._conn):
                if console:
                    _store.insert_console(self._conn, run_key, console)
                if system:
                    _store.insert_system(self._conn, run_key, system, keys)
                if files:
                    _store.save_run_files(self._conn, run_key, files)
                if rows:
                    if new:
                        _store.intern_keys(self._conn, sorted(new), keys)
                    for step, row in rows:
                        points += [(run_key, keys[k], step, v, None)
                                   if type(v) is float and v == v
                                   else _point(run_key, keys[k], step, v)
                                   for k, v in row.items()]
                    _store.insert_points(self._conn, steps, points)
                _store.update_run(self._conn, run_key, fields)
            self._last_beat = time.monotonic()
        except sqlite3.Error as exc:
            for key in set(keys) - known:  # their metric_keys rows were rolled back
                del keys[key]
            # busy_timeout has already waited out locks; what is left (disk full,
            # read-only, I/O error) will not pass by retrying, so the batch is dropped
            # and each kind of failure is said once. Earlier commits stay intact.
            self._lost_steps += len(steps)
            if str(exc) not in self._failures:
                self._failures.add(str(exc))
                warn(f"could not write to the store ({exc}); {len(steps)} steps are lost "
                     "and later ones may be too; what was written before is kept")
        return stop
