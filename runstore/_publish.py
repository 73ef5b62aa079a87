"""A run that publishes itself into a hub's inbox (settings publish_dir and
publish_interval; docs/SCALE-OUT.md).

Every publish_interval seconds, and once more when the run finishes, a delta of the run
(its row as it stands and what it logged since the last file) is built on local disk,
copied into the inbox as `<name>.tmp` and renamed: each file is written once, by one
host, and read only after the rename, so no SQLite file is ever shared over the network.
A file that cannot be written is retried with the next one (nothing is skipped).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import _threads
from ._handoff import Handoff
from ._store import _publish as stored
from ._values import warn


class Publisher:
    """Publishes one run of a local store into `inbox`."""

    def __init__(self, store: Path, run_key: int, run_id: str, inbox: Path,
                 interval: float) -> None:
        self._store, self._run_key, self._run_id = store, run_key, run_id
        self._inbox = inbox
        self._interval = interval
        self._session = time.time_ns()  # a resumed run's files get names of their own
        self._seq = 0
        self._marks = stored.Marks()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._said: set[str] = set()
        self._scratch = Path(tempfile.mkdtemp(prefix="runstore-publish-", dir=store.parent))
        self._empty: Path | None = None  # an empty delta of this schema, copied for each
        self._thread = _threads.start(self._loop, "runstore-publish")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.publish(final=False)

    def publish(self, final: bool) -> bool:
        """Publish what is new (all of it if the last file failed); False if it failed."""
        with self._lock:
            name = f"{self._run_id}.{self._session}.{self._seq:06d}.db"
            meta: dict[str, Any] = {"host": socket.gethostname(), "final": int(final),
                                    "published_ns": time.time_ns(), "seq": self._seq,
                                    "session": self._session}
            local = self._scratch / name
            try:
                if self._empty is None:
                    self._empty = self._scratch / "empty.db"
                    stored.empty_delta(self._empty)
                shutil.copyfile(self._empty, local)
                marks, _ = stored.export_delta(self._store, self._run_key, local,
                                               self._marks, meta)
                self._inbox.mkdir(parents=True, exist_ok=True)
                partial = self._inbox / f"{name}.tmp"
                shutil.copyfile(local, partial)
                os.replace(partial, self._inbox / name)
            except (OSError, sqlite3.Error) as exc:
                self._empty = None if isinstance(exc, sqlite3.Error) else self._empty
                self._say_once(f"could not publish run {self._run_id} into {self._inbox} "
                               f"({exc}); the next file will carry what this one missed")
                return False
            finally:
                local.unlink(missing_ok=True)
            self._marks, self._seq = marks, self._seq + 1
            return True

    def _say_once(self, message: str) -> None:
        kind = message.split("(", 1)[0]
        if kind not in self._said:
            self._said.add(kind)
            warn(message)

    def close(self) -> None:
        """Stop publishing on the clock and publish the run's final state."""
        self._stop.set()
        self._thread.join()
        self.publish(final=True)
        shutil.rmtree(self._scratch, ignore_errors=True)


class PublishingHandoff(Handoff):
    """The run's hand-off to its writer, which also publishes the run: on the clock,
    and once its writer has written everything, at finish."""

    def __init__(self, store_path: Path, run_key: int, run_id: str, t0: float,
                 runtime_offset: float, inbox: Path, interval: float, **kwargs: Any) -> None:
        super().__init__(store_path, run_key, run_id, t0, runtime_offset, **kwargs)
        self._publisher = Publisher(store_path, run_key, run_id, inbox, interval)

    def close(self) -> None:
        closed = self._closed
        super().close()
        if not closed:
            self._publisher.close()
