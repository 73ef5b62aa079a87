"""The training process's side of the writer: what log() and the run call.

Every put_* encodes its record into the run's ring file (_ring) before it returns, so a
record log() accepted is out of the training process's hands: the writer, a process of
its own started here without waiting for it (runstore._writer_process), drains
the ring into SQLite, and keeps draining after this process dies.

Where a process cannot be started (no usable sys.executable, an embedded interpreter) or
the setting writer_process is off, the same Writer runs in a thread of this process over
the same ring; a record then survives this process only in the ring file, which the next
init() on the store replays (_writer_process.recover). The thread takes over too if the
writer process dies before its run finished.

A child made by fork() (a DataLoader worker) inherits the run but not its writer: its
put_* calls are dropped, with one warning, and never touch the parent's ring.
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ._errors import CommError
from ._ring import (
    DEFAULT_CAPACITY,
    HEAD,
    HEADER,
    MIN_CAPACITY,
    PACKED,
    PACKED_HEAD,
    Prepared,
    Ring,
    notices_path,
    pause,
    remove,
)
from ._values import FloatKeys, warn
from ._writer import (
    Barrier,
    ConsoleLine,
    File,
    RunFields,
    Stop,
    SummaryChange,
    SystemSample,
    Writer,
)

_dumps = pickle.dumps


class _PlainPickler(pickle.Pickler):
    """Pickles subclasses of str, int and float (a StrEnum, numpy's str_) as the plain
    value: the writer process loads no user module and no numpy (runstore's own
    JsonText and MediaText stay what they are)."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in (str, int, float, bool) or str(kind.__module__).startswith("runstore."):
            return NotImplemented
        if isinstance(obj, str):
            return str, (str.__str__(obj),)  # the characters, not an Enum's str()
        for base in (int, float):
            if isinstance(obj, base):
                return base, (base(obj),)
        return NotImplemented


def _dumps_plain(item: Any) -> bytes:
    out = io.BytesIO()
    _PlainPickler(out, 5).dump(item)
    return out.getvalue()
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_live: weakref.WeakSet[Handoff] = weakref.WeakSet()


# A writer that ended before its run is replaced by a thread this many times at most.
MAX_REVIVALS = 3
# The writer process's warnings are given again here every this many records (+1), and
# whenever log() waits.
NOTICE_EVERY = 1023


class WriterGone(Exception):
    """The writer keeps ending before its run: nothing more can be handed over."""


def handoff_dir(store_path: Path) -> Path:
    """Where the rings of a store's runs live: beside the store file, like its -wal."""
    return store_path.with_name(store_path.name + "-handoff")


class Handoff:
    """The producer side of one run's writer."""

    def __init__(self, store_path: Path, run_key: int, run_id: str, t0: float,
                 runtime_offset: float, capacity: int | None = None,
                 use_process: bool = True, prepared: Prepared | None = None) -> None:
        folder = handoff_dir(store_path)
        folder.mkdir(exist_ok=True)
        path = folder / f"{os.getpid()}.{time.time_ns()}.ring"
        self._ring_path = str(path)
        self._args: dict[str, Any] = {
            "ring": str(path), "store": str(store_path), "run_key": run_key, "run_id": run_id,
            "t0": t0, "runtime_offset": runtime_offset, "parent": os.getpid(),
            "host": socket.gethostname()}
        self._ring = _new_ring(path, capacity or DEFAULT_CAPACITY, self._args, prepared)
        self.cursor = self._ring.cursor  # kept when _ring is swapped for a _Dropping
        self._ring_file = self._ring.file
        self._lock = threading.Lock()
        self._seq = 0
        self._notices_seen = 0
        self._notices_read = 0
        self._notices_lock = threading.Lock()
        self._closed = False
        self._stopped = False  # the Stop record is in the ring: nothing may follow it
        self._said_late = False
        self._revivals = 0
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._local: Writer | None = None  # the Writer, when it runs in a thread here
        # put_floats' layouts by keys, and the last one used by what plain_numbers gave
        self._layouts: dict[tuple[str, ...], tuple[int, Callable[..., bytes]]] = {}
        self._layout_of: FloatKeys | None = None
        self._layout: tuple[int, Callable[..., bytes]] | None = None
        if use_process:
            self._process = _start_process(self._args)
        if self._process is None:
            self._start_thread()
        _live.add(self)

    # -- hosts ---------------------------------------------------------------------------

    def _start_thread(self) -> None:
        from ._writer_process import serve_in_thread

        self._thread, self._local = serve_in_thread(self._args, self._ring)

    def _host_alive(self) -> bool:
        if self._thread is not None:
            return self._thread.is_alive()
        assert self._process is not None
        return self._process.poll() is None

    def _revive(self) -> None:
        """The writer ended before its run finished: go on in a thread, a few times."""
        self._revivals += 1
        if self._revivals > MAX_REVIVALS:
            raise WriterGone
        how = (f"process ended early (exit code {self._process.returncode})"
               if self._process is not None else "thread ended early")
        warn(f"the writer {how} while run {self._args['run_id']} was logging; the run goes "
             "on with a writer thread")
        self._process = None
        try:
            self._start_thread()
        except Exception as exc:  # the store is gone or full: nothing can take over
            warn(f"no writer thread could start ({exc})")
            raise WriterGone from exc

    def _wait(self, attempt: int) -> None:
        """While the ring is full or a flush waits: keep the writer alive, pass on what
        it said, sleep a little (attempt -1: before a side file, no sleep)."""
        # A writer gone with records left ended early; one gone with the ring drained
        # ended after the Stop record, as it should.
        if not self._host_alive() and not self._ring.drained():
            self._revive()
        self._forward_notices()
        if attempt >= 0:
            pause(attempt)

    def _given_up(self) -> None:
        """The writer keeps dying: say so once, and drop what comes, never block."""
        warn(f"the writer of run {self._args['run_id']} stopped {MAX_REVIVALS + 1} times; "
             "what is logged to this run from now on is not kept")
        self._drop_from_now_on()

    # -- producer ----------------------------------------------------------------------

    def put(self, item: Any) -> None:
        """Hand over one record: a history row as a bare tuple of _writer.Row's fields
        (log() calls this directly, a Python call fewer than put_row), or one of
        _writer's records."""
        try:
            data = _dumps(item, 5) if type(item) is tuple else _dumps_plain(item)
        except Exception as exc:  # a value no log() check foresaw: skip it, go on
            warn(f"could not hand {type(item).__name__} to the writer ({exc!r}); skipped")
            return
        self._hand(data, item)

    def put_floats(self, step: int, timestamp: float, runtime: float,
                   row: dict[str, float], checked: FloatKeys) -> None:
        """Hand over a history row of floats alone whose keys plain_numbers() just
        checked (`checked`, what it returned): packed, not pickled."""
        if checked is self._layout_of:
            layout = self._layout
        else:
            layout = self._layouts.get(checked[0]) or self._add_layout(checked[0])
            self._layout_of, self._layout = checked, layout
        if layout is not None:
            number, pack = layout
            try:  # `row` is log()'s own copy: no other thread changes it
                data = pack(PACKED, number, step, timestamp, runtime, *row.values())
            except struct.error:  # a value no check foresaw: put() copes with it
                pass
            else:
                self._hand(data, None)
                return
        self.put((step, timestamp, runtime, row, True))

    def bind_cursor(self, log: Callable[..., None], run_lock: Any, t0: float, offset: float,
                    pending: dict, summary: Any) -> Callable[..., None] | None:
        """The run's log() with its common call compiled (see _fast), which calls `log`
        (Run.log, bound) for every other; None where there is none: a runstore built
        without it, or a hand-off already stopped."""
        bind = getattr(self.cursor, "bind", None)
        ring = self._ring
        if bind is None or self._stopped or self._closed or type(ring) is not Ring:
            return None
        try:
            bind(handoff=self, map=ring._map, capacity=ring.capacity, largest=ring._largest,
                 header=HEADER, head_field=HEAD, packed=PACKED,
                 packed_head=PACKED_HEAD.size, notice_every=NOTICE_EVERY,
                 layouts=self._layouts, run_lock=run_lock, ring_lock=self._lock, t0=t0,
                 offset=offset, pending=pending, fallback=log,
                 **summary.parts_for_cursor(self.cursor.fold))
        except (TypeError, ValueError) as exc:  # an extension built for another runstore
            warn(f"log() runs in Python alone: its compiled part does not fit ({exc})")
            return None
        return cast(Callable[..., None], self.cursor.log)

    def _add_layout(self, keys: tuple[str, ...]) -> tuple[int, Callable[..., bytes]] | None:
        with self._lock:  # close() ends the side file after Stop, never during this
            if self._closed or self._stopped:
                return None  # a fork() child's, a given-up or a finished run's ring
            try:
                layout = self._ring.add_layout(keys)
            except OSError:
                return None  # no room for the side file: pickle the rows instead
        if layout is not None:
            self._layouts[keys] = layout
        return layout

    def _hand(self, data: bytes, item: Any) -> None:
        """Copy one encoded record into the ring (`item`: what it encodes, None for a
        packed row), waiting while the ring is full."""
        try:
            with self._lock:
                if self._stopped:
                    self._late(item)
                    return
                if type(item) is Stop:
                    self._stopped = True
                    self.cursor.open = False
                self._ring.put(data, self._wait)
                self.cursor.puts += 1
                if not self.cursor.puts & NOTICE_EVERY:
                    self._forward_notices()
        except WriterGone:
            self._given_up()
        except OSError as exc:  # a side file for a big record, on a full disk
            warn(f"could not hand {type(item).__name__} to the writer ({exc}); skipped")

    def _late(self, item: Any) -> None:
        """Something reached the run after finish() handed over its last record (a
        thread still logging or setting the summary): dropped, with a warning."""
        if not self._said_late:
            self._said_late = True
            what = "row" if item is None else type(item).__name__
            warn(f"run {self._args['run_id']} is finished; a {what} that reached it "
                 "afterwards is not kept")

    def put_row(self, step: int, timestamp: float, runtime: float, row: dict[str, Any],
                plain: bool = False) -> None:
        """Hand over one committed history row (`plain`: only ints and floats)."""
        self.put((step, timestamp, runtime, row, plain))

    def put_run(self, fields: dict[str, Any]) -> None:
        """Hand over an update of run columns (applied in order with the rows)."""
        self.put(RunFields(fields))

    def put_summary(self, operation: str, args: tuple[Any, ...]) -> None:
        """Hand over a change of the run's summary (see Summary.apply)."""
        self.put(SummaryChange(operation, args))

    def put_console(self, stream: str, at: float, line: str) -> None:
        """Hand over one line the run printed."""
        self.put(ConsoleLine(stream, at, line))

    def put_system(self, at: float, sample: dict[str, float]) -> None:
        """Hand over one sample of system metrics."""
        self.put(SystemSample(at, sample))

    def put_file(self, path: str, kind: str, content: bytes) -> None:
        """Hand over a file to keep with the run (deduplicated by content)."""
        self.put(File(path, kind, content))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over so far is committed."""
        if self._closed or self._stopped:
            return True
        with self._lock:
            self._seq += 1
            seq = self._seq
        self.put(Barrier(seq))
        self._ring.hurry()
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while self._ring.acked() < seq:
            if self._closed or (deadline is not None and time.monotonic() >= deadline):
                return False
            try:
                self._wait(attempt)
            except WriterGone:
                self._given_up()
                return False
            attempt += 1
        self._forward_notices()
        return True

    def close(self) -> None:
        """Hand over the last record, wait until the writer has written everything and
        stopped, and remove the ring."""
        if self._closed:
            return
        self.put(Stop())
        self._ring.hurry()
        attempt = 0
        while not self._closed:
            if not self._host_alive() and self._ring.drained():
                break
            try:
                self._wait(attempt)
            except WriterGone:
                self._given_up()
            attempt += 1
        self._closed = True
        self._forward_notices()
        self._ring.close()
        remove(self._ring_path)
        self._ring_file.unlink(missing_ok=True)  # in memory, if its link is gone
        _live.discard(self)

    # -- what the writer process said ----------------------------------------------------

    def _forward_notices(self) -> None:
        """Warnings of the writer process, given again here, where the user sees them."""
        # Called under the hand-off's lock, and also without it (the compiled log(),
        # flush()): one caller at a time reads the file, the others need not wait.
        if not self._notices_lock.acquire(blocking=False):
            return
        try:
            self._forward_new_notices()
        finally:
            self._notices_lock.release()

    def _forward_new_notices(self) -> None:
        count = self._ring.notices()
        if count == self._notices_seen:
            return
        self._notices_seen = count
        path = notices_path(self._ring_path)
        try:
            with open(path, "rb") as f:
                f.seek(self._notices_read)
                text = f.read()
        except OSError:
            return
        lines = text.split(b"\n")[:-1]  # a line still being written waits for next time
        self._notices_read += sum(len(line) + 1 for line in lines)
        for line in lines:
            warn(json.loads(line))

    # -- fork() -----------------------------------------------------------------------

    def _forked(self) -> None:
        """In a child of fork(): this run's writer belongs to the parent."""
        self._process = None  # not this process's child
        # A thread of the parent (logging, printing) may have held a lock at the fork;
        # the child has no such thread to let it go.
        self._lock = threading.Lock()
        self._notices_lock = threading.Lock()
        self._drop_from_now_on(
            f"run {self._args['run_id']} belongs to process {self._args['parent']}; what "
            f"process {os.getpid()} (a fork() of it) logs to it is not kept (init a run in "
            "this process to keep it)")

    def _drop_from_now_on(self, message: str | None = None) -> None:
        """Every record from now on is dropped (with `message` said once): the ring is
        swapped for one that keeps nothing, so even a put_* bound before (the console
        capture's) cannot reach the shared map."""
        self.cursor.unbind()  # lets go of the map, which the ring's owner may close
        self._ring = cast(Ring, _Dropping(message))
        self._closed = True


class _Dropping:
    """A ring that keeps nothing: what a fork() child or a given-up run hands over."""

    def __init__(self, message: str | None) -> None:
        self._message = message

    def put(self, data: bytes, wait: Any) -> None:
        if self._message is not None:
            message, self._message = self._message, None
            warn(message)

    def add_layout(self, keys: tuple[str, ...]) -> None:
        return None  # nothing is packed: the rows are pickled, and dropped in put()

    def acked(self) -> int:
        return 1 << 62

    def hurry(self) -> None:
        pass

    def notices(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _new_ring(path: Path, capacity: int, args: dict[str, Any],
              prepared: Prepared | None) -> Ring:
    """The ring, as big as asked, or as big as the disk allows (at least MIN_CAPACITY)."""
    while True:
        try:
            return Ring(path, create=True, capacity=capacity, args=args, prepared=prepared)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or capacity <= MIN_CAPACITY:
                raise CommError(f"cannot make the hand-off file {path}: {exc}") from exc
            capacity //= 2


def _forget_all_after_fork() -> None:
    for handoff in list(_live):
        handoff._forked()
    _live.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_after_fork)


# The writer process loads only the modules it runs (not runstore/__init__ and what the
# public API imports) from this very copy of runstore, without site-packages: it needs
# the standard library alone, and starts in about half the time. The package is found
# through its __path__, not sys.path, so nothing installed beside it (a backport named
# like a standard module, say) can shadow the standard library.
_BOOT = """
import sys, types
package = types.ModuleType("runstore")
package.__path__ = [sys.argv[1] + "/runstore"]
sys.modules["runstore"] = package
from runstore._writer_process import main
main()
"""


def _start_process(args: dict[str, Any]) -> subprocess.Popen | None:
    """Start the writer process, not waiting for it; None where it cannot start."""
    if not sys.executable or getattr(sys, "frozen", False):
        return None  # no Python to start (or a frozen app, which would start itself)
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, _PACKAGE_PARENT, json.dumps(args)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            # Its own session: Ctrl+C or Ctrl+\ in the terminal reach the training
            # process, not its writer, which drains and stops once its parent is gone.
            start_new_session=True, close_fds=True)
    except OSError:
        return None
