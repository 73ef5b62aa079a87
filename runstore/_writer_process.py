"""Where the Writer runs: its own process (the default), a thread (the fallback), or a
one-off drain of a ring whose run and writer are both gone (recover).

    python -c 'from runstore._writer_process import main; main()' '{"ring": ...}'

The process ignores the signals a terminal or a job scheduler sends to stop training
(SIGINT, SIGTERM, SIGHUP, SIGQUIT): it stops by itself, once its run is finished, or
once its parent is gone and the ring is drained, with the run marked crashed. It never
outlives that by more than the time the drain takes. Its warnings go to a notices file
beside the ring, and the training process gives them again as its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from . import _store, _threads
from ._ring import Ring, lost_here, memory_files, notices_path, remove
from ._values import utc_now
from ._writer import Writer

# The run and ring a writer serves, as _handoff passes them (JSON), also kept in the
# ring's header so that recover() can drain a ring nobody serves any more.
Args = dict[str, Any]


def _writer(args: Args, share: Ring | None = None, stopped: Any = lambda: False) -> Writer:
    ring = Ring(Path(args["ring"]), share=share)
    ring.set_consumer(os.getpid())
    t0, offset = float(args["t0"]), float(args["runtime_offset"])

    def heartbeat() -> dict[str, Any]:
        # The training process's sign of life, not the writer's: none while it is
        # stopped, even for records it handed over before it was.
        if stopped():
            return {}
        return {"heartbeat_at": utc_now(), "runtime": time.time() - t0 + offset}

    store = Path(args["store"])
    return Writer(_store.connect(store), ring, int(args["run_key"]), heartbeat,
                  path=store, run_id=str(args["run_id"]))


def _serve(writer: Writer, producer_alive: Any, producer_stopped: Any = lambda: False) -> None:
    try:
        writer.serve(producer_alive, producer_stopped)
    finally:
        writer.ring.close()


def serve_in_thread(args: Args, ring: Ring) -> tuple[threading.Thread, Writer]:
    """The fallback host: a thread of the training process (on the producer's own map of
    `ring`), stopped by the Stop record."""
    writer = _writer(args, share=ring)
    return _threads.start(_serve, "runstore-writer", writer, lambda: True), writer


def _notify_through(ring_path: str) -> None:
    """Warnings go to the notices file (one JSON string a line) and the ring's counter."""
    notices = notices_path(ring_path)

    def show(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
        text = str(message)
        if not text.startswith("runstore: "):
            return  # another library's warning, in the writer's own process
        text = text.removeprefix("runstore: ")
        try:
            with open(notices, "a", encoding="utf-8") as f:
                f.write(json.dumps(text) + "\n")
            ring = Ring(Path(ring_path))
            try:
                ring.noticed()
            finally:
                ring.close()
        except (OSError, ValueError):  # the store's folder is gone or full
            print(f"runstore: {text}", file=sys.stderr)
            return
        if os.getppid() != parent:
            print(f"runstore: {text}", file=sys.stderr)

    parent = os.getppid()
    warnings.showwarning = show
    warnings.simplefilter("always")


def _alive(pid: int) -> bool:
    return bool(pid) and _store.pid_alive(pid)


def recover(store_path: Path, wait_s: float = 30.0) -> int:
    """Drain the rings of this store whose run is gone: a writer process still draining
    one is given up to `wait_s` to finish (so that what follows, a resume say, sees all
    of it); a ring nobody serves any more (its run and its writer killed together) is
    drained here and its run marked crashed. Returns the rings drained here."""
    from ._handoff import handoff_dir

    drained = 0
    for path in sorted(handoff_dir(store_path).glob("*.ring")):
        try:
            ring = Ring(path)
        except (OSError, ValueError):
            if lost_here(path):
                path.unlink(missing_ok=True)  # its file in this host's memory is gone
            continue
        try:
            args, producer, consumer = ring.args(), ring.producer_pid(), ring.consumer_pid()
        finally:
            ring.close()
        if args is None or args.get("host") != socket.gethostname() or _alive(producer):
            continue  # a live run, or one of another host sharing the folder
        deadline = time.monotonic() + wait_s
        while _alive(consumer) and time.monotonic() < deadline and path.exists():
            time.sleep(0.02)
        if _alive(consumer) or not path.exists():
            continue
        _serve(_writer({**args, "ring": str(path), "store": str(store_path)}), lambda: False)
        remove(path)
        drained += 1
    sweep_memory()
    return drained


UNCLAIMED_S = 60.0


def sweep_memory() -> int:
    """Remove ring files in memory that nobody can reach any more: their run and writer
    are gone and the store's link to them is gone too (the store was deleted). A ring
    its store still links to holds records for that store's recover(). Returns the
    files removed."""
    removed = 0
    for path in memory_files():
        try:
            ring = Ring(path)
        except ValueError:  # no ring header yet: a file init() is making, or one it
            # never took (its process died at once): gone after a minute
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > UNCLAIMED_S:
                    path.unlink()
                    removed += 1
            continue
        except OSError:
            continue
        try:
            args, producer, consumer = ring.args(), ring.producer_pid(), ring.consumer_pid()
        finally:
            ring.close()
        if _alive(producer) or _alive(consumer):
            continue
        link = Path(args["ring"]) if args and "ring" in args else None
        if link is not None and link.is_symlink() and Path(os.readlink(link)) == path:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def main() -> None:
    args: Args = json.loads(sys.argv[-1])
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    parent = int(args["parent"])
    _notify_through(args["ring"])
    def stopped() -> bool:
        return _store.process_stopped(parent)

    _serve(_writer(args, stopped=stopped), lambda: os.getppid() == parent, stopped)
    if os.getppid() != parent:  # the run died: nobody else will tidy up its ring
        remove(args["ring"])

