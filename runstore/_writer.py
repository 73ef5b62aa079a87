"""The writer: drains a run's hand-off ring (_ring) into the store.

log() copies each row into the ring before it returns; the writer reads whatever has
arrived (at most BATCH_POINTS values), writes it in one transaction, commits, and only
then moves the ring's tail, so a record leaves the ring only once it is in the store.
It runs in a process of its own (_handoff starts it), which outlives a training process
killed by SIGKILL, an abort or a segfault long enough to drain the ring and mark the run
crashed.

The run's summary is replayed here, in order with the rows, so the summary
committed with a batch describes exactly the history committed with it.

A batch the store refuses is never lost whole: if the store is writable at all,
the batch is written again piece by piece and only the values it refuses are
dropped, each named in a warning.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any, NamedTuple

from . import _store
from ._offline import new_offline_store
from ._ring import PackedRow, Ring, Unreadable
from ._summary import Summary, parse_ops
from ._values import JsonText, MediaText, storable_text, utc_now, warn

BATCH_POINTS = 20_000
HEARTBEAT_S = 5.0
# Once it has caught up (a batch short of BATCH_POINTS), the writer waits COMMIT_EVERY_S
# before its next commit (a trickle of log() calls gathers into one transaction instead
# of one each, which would cost the training process more than the logging); a backlog
# is written batch after batch. It looks at an empty ring every IDLE_S; either wait ends
# at once when a flush or finish waits or the ring fills (it looks every POLL_S). What
# waits is safe in the ring meanwhile.
COMMIT_EVERY_S, IDLE_S, POLL_S = 0.01, 0.02, 0.001


def _inode(path: Path | None) -> int | None:
    try:
        return None if path is None else os.stat(path).st_ino
    except OSError:
        return None


def _point(run_key: int, key_id: int, step: int, value: Any) -> tuple:
    """A history row for a value that is not a plain int or float: JSON text (media are
    their description; the bytes go to blobs), a bool (0/1, marked by its JSON so it
    reads back as a bool), or NaN (which SQLite would store as NULL)."""
    if isinstance(value, JsonText):
        return (run_key, key_id, step, None, str(value))
    if type(value) is bool:
        return (run_key, key_id, step, int(value), "true" if value else "false")
    if type(value) is float:
        return (run_key, key_id, step, None, "NaN")
    raise TypeError(f"a {type(value).__name__} is not a value log() stores")


def _console_text(line: str) -> str:
    """A printed line as SQLite can hold it: lone surrogates (bytes that were not
    UTF-8, decoded with surrogateescape) kept as backslash escapes."""
    if storable_text(line):
        return line
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


# -- what the queue holds: one record per kind, in the order they were put --------------


class Row(NamedTuple):
    """One committed history row (`plain`: only ints and floats)."""

    step: int
    timestamp: float
    runtime: float
    values: dict[str, Any]
    plain: bool


# log() hands a row over as a bare tuple of Row's fields, the cheapest object to build
# and to pickle; the writer makes it a Row when it reads it.
QueuedRow = tuple[int, float, float, dict[str, Any], bool]
_as_row = tuple.__new__  # Row(...) runs a __new__ written in Python; this is the C one


class _Packed(NamedTuple):
    """Consecutive packed rows of one layout, as columns: a row's `values` are those
    of `keys` in their order."""

    keys: tuple[str, ...]
    steps: tuple[int, ...]
    timestamps: tuple[float, ...]
    runtimes: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]


def _rows_of(segment: Row | _Packed) -> list[Row]:
    """A batch's rows one by one, for the paths that are rare (salvage, bad keys)."""
    if isinstance(segment, Row):
        return [segment]
    keys = segment.keys
    return [Row(step, ts, runtime, dict(zip(keys, values, strict=True)), True)
            for step, ts, runtime, values in zip(segment.steps, segment.timestamps,
                                                 segment.runtimes, segment.values, strict=True)]


def _step_count(segments: list[Row | _Packed]) -> int:
    return sum(len(s.steps) if type(s) is _Packed else 1 for s in segments)


Series = dict[tuple[int, int], tuple[list[int], list[float]]]


def _extend(series: Series, key: tuple[int, int], steps: Sequence[int],
            values: Sequence[float]) -> None:
    """Add points to one series of the batch (what fold_series takes)."""
    have = series.get(key)
    if have is None:
        series[key] = (list(steps), list(values))
    else:
        have[0].extend(steps)
        have[1].extend(values)


class RunFields(NamedTuple):
    """An update of run columns."""

    fields: dict[str, Any]


class SummaryChange(NamedTuple):
    """A change of the run's summary (see Summary.apply)."""

    operation: str
    args: tuple[Any, ...]


class ConsoleLine(NamedTuple):
    stream: str
    at: float
    line: str


class SystemSample(NamedTuple):
    at: float
    sample: dict[str, float]


class File(NamedTuple):
    path: str
    kind: str
    content: bytes


class Barrier(NamedTuple):
    """Acknowledged (its seq written to the ring) once everything before it is
    committed (flush)."""

    seq: int


class Stop(NamedTuple):
    """The last item: write what came before, then close."""


Item = QueuedRow | RunFields | SummaryChange | ConsoleLine | SystemSample | File | Barrier | Stop


def _new_keys(rows: list[Row | _Packed], keys: dict[str, int]) -> set[str]:
    """The metric keys of `rows` not interned yet (a C-level subset test per row: once
    a run's keys are known, no Python loop over its values)."""
    known = keys.keys()
    new: set[str] = set()
    for row in rows:
        row_keys = row.values.keys() if isinstance(row, Row) else set(row.keys)
        if not known >= row_keys:
            new.update(row_keys - known)
    return new


def _points(item: Any) -> int:
    """What an item counts toward a batch: a row its values, anything else one."""
    if type(item) is PackedRow or type(item) is tuple:
        return len(item[3])
    return 1


class _Batch:
    """One batch of queue items, sorted by kind, in the order they were queued."""

    __slots__ = ("console", "fields", "files", "rows", "stop", "system")

    def __init__(self) -> None:
        self.rows: list[Row | _Packed] = []  # in the order they were logged
        self.console: list[tuple[str, float, str]] = []  # stream, at, line
        self.system: list[tuple[float, dict[str, float]]] = []  # at, sample
        self.files: list[tuple[str, str, bytes, str]] = []  # path, kind, content, saved at
        self.fields: dict[str, Any] = {}
        self.stop = False


class Writer:
    """Drains one run's ring into the store, on its own connection. It runs in the
    writer process (or, as a fallback, a thread of the training process: _handoff)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        ring: Ring,
        run_key: int,
        heartbeat: Callable[[], dict[str, Any]],
        path: Path | None = None,
        run_id: str = "run",
    ) -> None:
        self._conn = conn
        self.ring = ring
        self._path = path
        self._run_id = run_id
        self._inode = _inode(path)
        self._run_key = run_key
        self._heartbeat = heartbeat
        self._keys: dict[str, int] = {}
        self._summary = Summary()
        self._summary_saved = 0
        self._lost_steps = 0
        self._failures: set[str] = set()
        self._bad_keys: set[str] = set()
        self._refused: set[str] = set()
        self._last_beat = 0.0
        self.stopped = False
        if ring.tail() > 0:
            self._continue_summary()

    def _continue_summary(self) -> None:
        """A writer taking over a ring (after a writer that died) has not seen the
        summary changes already committed: start from the store's summary, rules and
        aggregates, as a resume does."""
        row = _store.get_run_by_key(self._conn, self._run_key)
        if row is None:
            return
        for d in _store.metric_definitions(row):
            self._summary.add_rule(d["name"], parse_ops(d.get("summary"), d.get("goal")))
        self._summary.restore(_store.metric_aggregates(self._conn, self._run_key),
                              row["summary"] or None)
        self._summary_saved = self._summary.version

    def serve(self, producer_alive: Callable[[], bool],
              producer_stopped: Callable[[], bool] = lambda: False) -> None:
        """Write what the ring holds, batch by batch, until a Stop record is written
        or the producer is gone and the ring is drained; then close the connection.
        The heartbeat is the training process's: none while it is stopped (Ctrl+Z),
        so a paused run shows as such, as when the writer lived in that process."""
        ring = self.ring
        try:
            while not self.stopped:
                items, tail, spilled = ring.read(BATCH_POINTS, _points)
                if items:
                    self._write_and_ack(items, tail, spilled)
                    if not self.stopped and sum(map(_points, items)) < BATCH_POINTS:
                        self._nap(COMMIT_EVERY_S)  # caught up: let more gather
                    continue
                if not producer_alive():
                    # Read once more: the producer may have written just before it died.
                    items, tail, spilled = ring.read(BATCH_POINTS, _points)
                    if items:
                        self._write_and_ack(items, tail, spilled)
                        continue
                    if not ring.drained():
                        warn(f"the hand-off file {ring.path} of run {self._run_id} ends in "
                             "a damaged record; what follows it is lost")
                    self._write([RunFields({"state": "crashed"})])
                    return
                if time.monotonic() - self._last_beat >= HEARTBEAT_S and not producer_stopped():
                    self._write([])
                self._nap(IDLE_S)
        finally:
            self._conn.close()
            if self._lost_steps:
                warn(f"{self._lost_steps} steps of run {self._run_id} could not be written "
                     f"to the store ({'; '.join(sorted(self._failures))})")

    def _nap(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when a flush waits or the ring fills."""
        end = time.monotonic() + seconds
        while not self.ring.urgent():
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, POLL_S))

    def _write_and_ack(self, items: list[Item | PackedRow], tail: int, spilled: list[Path]) -> None:
        try:
            self.stopped = self._write(items)
        except Exception as exc:  # the writer must outlive any one bad batch
            warn(f"could not write to the store ({exc!r}); this batch is lost")
            self.stopped = any(type(item) is Stop for item in items)
        self.ring.commit(tail)
        for path in spilled:
            path.unlink(missing_ok=True)
        barriers = [item.seq for item in items if type(item) is Barrier]
        if barriers:
            self.ring.ack(max(barriers))

    def _rescue_if_moved(self) -> None:
        """If the store file was deleted or replaced under us, save everything this
        connection holds to an offline store and carry on writing there."""
        if self._path is None or _inode(self._path) == self._inode:
            return
        target = new_offline_store(self._path.parent, self._run_id)
        _store.snapshot_to(self._conn, target)
        self._conn.close()
        self._conn = _store.connect(target)
        self._path, self._inode = target, _inode(target)
        warn(f"the store was deleted or replaced while run {self._run_id} was writing to it; "
             f"everything written so far is saved in {target} and logging continues there "
             f"(merge it into a store with: runstore sync {target.parent})")

    def _write(self, items: list[Item | PackedRow]) -> bool:
        self._rescue_if_moved()
        batch = self._partition(items)
        self._drop_unstorable_keys(batch)
        try:
            self._commit(batch)
        except Exception:
            self._salvage(batch)
        return batch.stop

    def _partition(self, items: list[Item | PackedRow]) -> _Batch:
        """Sort items by kind, replaying rows and summary changes on the summary."""
        batch = _Batch()
        summary = self._summary
        packed: list[PackedRow] = []  # consecutive packed rows of one layout
        for item in items:
            if type(item) is PackedRow:
                if packed and item.keys is not packed[0].keys:
                    self._add_packed(batch, packed)
                    packed = []
                packed.append(item)
                continue
            if packed:
                self._add_packed(batch, packed)
                packed = []
            if type(item) is tuple:  # a QueuedRow
                row = _as_row(Row, item)
                batch.rows.append(row)
                summary.add_row(row.values, row.plain)
                continue
            match item:
                case SummaryChange(operation, args):
                    summary.apply(operation, args)
                case RunFields(fields):
                    batch.fields.update(fields)
                case ConsoleLine(stream, at, line):
                    batch.console.append((stream, at, _console_text(line)))
                case SystemSample():
                    batch.system.append(item)
                case File(path, kind, content):
                    batch.files.append((path, kind, content, utc_now()))
                case Stop():
                    batch.stop = True
                case Barrier():
                    pass  # acknowledged once the batch is written
                case Unreadable(error):
                    warn(f"a record handed to the writer could not be read ({error}); "
                         "it is skipped")
        if packed:
            self._add_packed(batch, packed)
        batch.files += [(v.path, "media", v.blob, utc_now()) for row in batch.rows
                        if type(row) is Row and not row.plain  # plain: only numbers
                        for v in row.values.values() if type(v) is MediaText]
        return batch

    def _add_packed(self, batch: _Batch, rows: list[PackedRow]) -> None:
        steps, timestamps, runtimes, _, values = zip(*rows, strict=True)
        keys = rows[0].keys
        batch.rows.append(_Packed(keys, steps, timestamps, runtimes, values))
        self._summary.add_rows(keys, values)

    def _drop_unstorable_keys(self, batch: _Batch) -> None:
        # log()'s fast path leaves key checks to the first time a key is seen.
        unstorable = {k for k in _new_keys(batch.rows, self._keys) if not storable_text(k)}
        if not unstorable:
            return
        if not unstorable <= self._bad_keys:
            warn(f"metric keys {sorted(map(repr, unstorable))} are not storable text "
                 "(lone surrogates); their values are skipped")
            self._bad_keys |= unstorable
        batch.rows = [row._replace(values={k: v for k, v in row.values.items()
                                           if k not in unstorable})
                      for segment in batch.rows for row in _rows_of(segment)]

    def _commit(self, batch: _Batch, with_summary: bool = True) -> None:
        """Write a batch in one transaction, with the heartbeat and, if it changed,
        the summary. On any failure nothing of it stays, in the store or in the cache
        of interned keys."""
        conn, run_key, keys = self._conn, self._run_key, self._keys
        fields = {**self._heartbeat(), **batch.fields}
        version = self._summary.version
        with_summary = with_summary and version != self._summary_saved
        if with_summary:
            fields["summary"] = self._summary.as_dict()
        interned = len(keys)
        try:
            with _store.transaction(conn):
                if batch.console:
                    _store.insert_console(conn, run_key, batch.console)
                if batch.system:
                    _store.insert_system(conn, run_key, batch.system, keys)
                if batch.files:
                    _store.save_run_files(conn, run_key, batch.files)
                if batch.rows:
                    new = _new_keys(batch.rows, keys)
                    if new:
                        _store.intern_keys(conn, sorted(new), keys)
                    _store.insert_points(conn, *self._history(batch.rows))
                _store.update_run(conn, run_key, fields)
        except BaseException:
            for key in list(keys)[interned:]:  # their metric_keys rows were rolled back
                del keys[key]
            raise
        if with_summary:
            self._summary_saved = version
        self._last_beat = time.monotonic()

    def _history(self, rows: list[Row | _Packed]) -> tuple[list, Iterable[tuple], Series]:
        """The step rows, the points and the series to fold of a batch's rows. A packed
        segment is written column by column: its points are made by C-level zips as
        SQLite binds them, in the order of the history's primary key (run_key, key_id,
        step)."""
        run_key, keys = self._run_key, self._keys
        steps: list[tuple] = []
        points: list[Iterable[tuple]] = []
        series: Series = {}
        for row in rows:
            if isinstance(row, _Packed):
                steps += zip(repeat(run_key), row.steps, row.timestamps, row.runtimes)
                for key, column in zip(row.keys, zip(*row.values, strict=True), strict=True):
                    key_id = keys[key]
                    total = sum(column)
                    if total == total:  # no NaN, which SQLite would store as NULL
                        points.append(zip(repeat(run_key), repeat(key_id), row.steps, column,
                                          repeat(None)))
                        _extend(series, (run_key, key_id), row.steps, column)
                        continue
                    kept: list[tuple[int, float]] = []
                    some: list[tuple] = []
                    for step, value in zip(row.steps, column, strict=True):
                        if value == value:
                            some.append((run_key, key_id, step, value, None))
                            kept.append((step, value))
                        else:
                            some.append((run_key, key_id, step, None, "NaN"))
                    points.append(some)
                    if kept:
                        _extend(series, (run_key, key_id), *zip(*kept, strict=True))
                continue
            step, ts, runtime, values, _ = row
            steps.append((run_key, step, ts, runtime))
            row_points = [(run_key, keys[k], step, v, None)
                          if (type(v) is float and v == v) or type(v) is int
                          else _point(run_key, keys[k], step, v)
                          for k, v in values.items()]
            points.append(row_points)
            for point in row_points:
                if point[3] is not None:
                    _extend(series, (run_key, point[1]), (step,), (point[3],))
        return steps, chain.from_iterable(points), series

    def _salvage(self, batch: _Batch) -> None:
        """After a failed batch: if even a heartbeat cannot be written, the store is
        the problem (full, read-only, I/O) and the batch is lost, said once per kind of
        failure; otherwise write it again piece by piece, dropping only what fails."""
        try:
            self._commit(_Batch(), with_summary=False)
        except Exception as exc:
            lost = _step_count(batch.rows)
            self._lost_steps += lost
            if str(exc) not in self._failures:
                self._failures.add(str(exc))
                warn(f"could not write to the store ({exc}); {lost} step{'s' * (lost != 1)} "
                     "lost, later ones may be too; what was written before is kept")
            return
        for segment in batch.rows:
            for row in _rows_of(segment):
                self._salvage_row(row)
        for kind in ("console", "system", "files"):
            for item in getattr(batch, kind):
                piece = _Batch()
                getattr(piece, kind).append(item)
                self._try(piece, f"a {kind} entry")
        for name, value in batch.fields.items():
            piece = _Batch()
            piece.fields[name] = value
            self._try(piece, f"the run's {name}")
        if not self._try(_Batch(), None, with_summary=True):
            self._salvage_summary()

    def _salvage_row(self, row: Row) -> None:
        piece = _Batch()
        piece.rows.append(row)
        if self._try(piece, None):
            return
        for key, value in row.values.items():
            piece = _Batch()
            piece.rows.append(row._replace(values={key: value}))
            self._try(piece, f"the value of {key!r} at step {row.step}")

    def _salvage_summary(self) -> None:
        """Drop the summary keys the store refuses (the summary converts values as
        they are assigned, so this is a last line of defence), then write the rest."""
        data = self._summary._data
        for key in list(data):
            piece = _Batch()
            piece.fields["summary"] = {key: data[key]}
            if not self._try(piece, f"the summary value of {key!r}"):
                del data[key]
        self._try(_Batch(), None, with_summary=True)

    def _try(self, piece: _Batch, what: str | None, with_summary: bool = False) -> bool:
        """Commit one piece; on failure warn once per `what` (if given) and say False."""
        try:
            self._commit(piece, with_summary)
        except Exception as exc:
            if what is not None and what not in self._refused:
                self._refused.add(what)
                warn(f"the store refused {what} ({exc}); it is skipped and the rest of "
                     "the batch is kept")
            return False
        return True
