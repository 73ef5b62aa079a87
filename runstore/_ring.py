"""The hand-off between log() and the writer: a ring of records in a shared file.

log() encodes its row and copies it into a memory map of a file in the store's
directory before it returns. The pages belong to the kernel's page cache, not to the
training process, so what log() accepted survives that process's SIGKILL, abort or
segfault: the writer (a process of its own, see _writer_host) keeps draining the file
into SQLite after its parent is gone. A file, not /dev/shm, so macOS works the same.

Layout: a 4 KiB header of little-endian u64 fields, then `capacity` bytes of records.
A record is u32 length, u32 CRC-32 of the payload, the payload, padded to 8 bytes; it
never wraps, a WRAP length sends the reader back to the start. `head` and
`tail` count bytes since the ring was made: the producer alone moves head (after the
record is written), the consumer alone moves tail (after the records are committed).
The CRC lets the consumer tell a record whose bytes are not visible yet (a CPU with
weak store ordering) from one that is whole.

A payload is a pickle, or a packed row: a history row of floats alone, the common
one, as struct-packed numbers (PACKED, layout number, step, timestamp, runtime, the
values), about a third of the pickle's cost to make and to read. Its keys are kept once
per layout in a side file, `<ring>.layouts`, written before the first row that uses it:
every reader, wherever in the ring it starts (a writer thread taking over, the next
init()'s replay), finds them there.

A record too big for a quarter of the ring is written to a side file next to the ring
and the ring carries its name.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import pickle
import socket
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from . import _threads
from ._fast import new_cursor

# 03: payloads may be packed rows, which a runstore that knows only 02 (pickles alone)
# cannot read: its recover() would drain such a ring into nothing and remove it, so it
# must refuse it. A 02 ring (of a runstore before packed rows) is read here as well.
MAGIC = b"RSRING03"
_READABLE = (MAGIC, b"RSRING02")
HEADER = 4096
DEFAULT_CAPACITY = 8 << 20
MIN_CAPACITY = 64 << 10
WRAP = 0xFFFFFFFF
_U64 = struct.Struct("<Q")
_REC = struct.Struct("<II")
_pack_u64, _pack_record, _crc32 = _U64.pack_into, _REC.pack_into, zlib.crc32
PACKED = 0x50  # the first byte of a packed row's payload (a pickle's is 0x80)
PACKED_HEAD = struct.Struct("<BxxxIqdd")  # PACKED, layout, step, timestamp, runtime
# A run that logs ever new sets of keys stops packing (and pickles) past this many.
MAX_LAYOUTS = 4096
# Header fields (byte offsets), then the run it serves (u32 length, JSON) at ARGS.
# URGENT: the producer's head when it last asked for a commit now (flush, finish).
CAPACITY, HEAD, TAIL, ACKED, PRODUCER, CONSUMER, NOTICES, URGENT, ARGS = range(8, 80, 8)
_ARGS_MAX = HEADER - ARGS - 4


class Spilled(NamedTuple):
    """A record kept in a side file (too big for the ring)."""

    path: str


class PackedRow(NamedTuple):
    """A packed row as read: the values of its layout's keys, in their order (no dict:
    the writer turns runs of rows of one layout into columns)."""

    step: int
    timestamp: float
    runtime: float
    keys: tuple[str, ...]
    values: tuple[float, ...]


# NamedTuple's __new__ is written in Python; this is the C one.
_packed_row = tuple.__new__


class Unreadable(NamedTuple):
    """A record whose bytes arrived whole but could not be decoded: the writer says
    why and goes on with the next."""

    error: str


def notices_path(ring: str | Path) -> Path:
    """The writer's warnings for the training process: one JSON string a line."""
    return Path(f"{ring}.notices")


def remove(ring: str | Path) -> None:
    """Delete a ring (and its file in memory, if its name links there) with its notices
    and any side files left beside it."""
    ring = Path(ring)
    if ring.is_symlink():
        Path(os.readlink(ring)).unlink(missing_ok=True)
    for path in (ring, notices_path(ring), *ring.parent.glob(ring.name + ".*")):
        path.unlink(missing_ok=True)


def _layouts_path(ring: Path) -> Path:
    return Path(f"{ring}.layouts")


def _read_layouts(ring: Path, start: int) -> tuple[list[tuple[str, ...]], int]:
    """The keys of the layouts the producer numbered after byte `start` of the side file
    (none if no file), and where the next one starts. Only what is new is read: a run
    that logs a new key every step has a new layout every step."""
    try:
        with open(_layouts_path(ring), "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    layouts, at = [], 0
    while at + 4 <= len(data):
        (n,) = struct.unpack_from("<I", data, at)
        if at + 4 + n > len(data):
            break  # still being written
        layouts.append(pickle.loads(data[at + 4:at + 4 + n]))
        at += 4 + n
    return layouts, start + at


def _allocate(fd: int, size: int) -> None:
    """Give the file all its blocks now: a page of a sparse file written through the map
    on a full disk would kill the process with SIGBUS; here it is an OSError."""
    if hasattr(os, "posix_fallocate"):
        os.ftruncate(fd, size)
        os.posix_fallocate(fd, 0, size)
        return
    zeros = bytes(1 << 20)  # macOS has no posix_fallocate: write the zeros
    for offset in range(0, size, len(zeros)):
        os.write(fd, zeros[:size - offset])


# Linux keeps a tmpfs at /dev/shm. A ring there is written without the page faults of a
# file on disk: ext4 write-protects each page again after writing it back, and log()'s
# next write to it faulted (30-45 µs, ~3 % of calls). Its name in the store's hand-off
# folder is then a link to it. Elsewhere (macOS, a full or missing /dev/shm, or
# RUNSTORE_RING_ON_DISK set) the ring is a file in the folder itself.
MEMORY_DIR = Path("/dev/shm")
# Populated: every page mapped at creation, none faulted in by log() later.
_MAP_FLAGS = ({"flags": mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)}
              if hasattr(mmap, "MAP_SHARED") else {})


def _in_memory() -> bool:
    return MEMORY_DIR.is_dir() and hasattr(os, "getuid") and not os.environ.get(
        "RUNSTORE_RING_ON_DISK")


def _memory_file(size: int) -> tuple[mmap.mmap, Path] | None:
    """A new ring file of `size` bytes in memory, mapped; None where there is no room."""
    target = MEMORY_DIR / f"{_memory_prefix()}{_HOST}-{os.urandom(8).hex()}.ring"
    try:
        return _map_new(target, size), target
    except OSError:
        return None  # full, or no such folder after all: on disk


class Prepared:
    """A ring file in memory made by a thread while init() does its other work: giving a
    tmpfs file its pages and mapping them costs ~10 ms for 8 MiB, which init() would
    otherwise wait for. Ring(create=True, prepared=...) takes it; discard() removes one
    nobody took."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._made: tuple[mmap.mmap, Path] | None = None
        self._thread = (_threads.start(self._make, "runstore-ring") if _in_memory()
                        else None)

    def _make(self) -> None:
        self._made = _memory_file(self.size)

    def take(self, size: int) -> tuple[mmap.mmap, Path] | None:
        """The file, if it was made for `size` bytes (then it is no longer discarded)."""
        if self._thread is not None:
            self._thread.join()
        if size != self.size:
            return None
        made, self._made = self._made, None
        return made

    def discard(self) -> None:
        made = self.take(self.size)
        if made is not None:
            made[0].close()
            made[1].unlink(missing_ok=True)


def _create(path: Path, size: int,
            prepared: Prepared | None = None) -> tuple[mmap.mmap, Path]:
    """A new ring file of `size` bytes at `path` (or in memory, linked from `path`),
    mapped: (the map, the file)."""
    if _in_memory():
        made = prepared.take(size) if prepared is not None else None
        made = made or _memory_file(size)
        if made is not None:
            try:
                os.symlink(made[1], path)
            except BaseException:
                made[0].close()
                made[1].unlink(missing_ok=True)
                raise
            return made
    return _map_new(path, size), path


# This host, in the names of its memory files: a store folder shared between hosts (or
# containers sharing /dev/shm) holds links to files that are only in one host's memory,
# and the others must leave them alone.
_HOST = hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _memory_prefix() -> str:
    return f"runstore-{os.getuid()}-"


def memory_files() -> list[Path]:
    """This user's ring files in this host's memory (Linux): see
    _writer_process.sweep_memory."""
    if not MEMORY_DIR.is_dir() or not hasattr(os, "getuid"):
        return []
    return sorted(MEMORY_DIR.glob(f"{_memory_prefix()}{_HOST}-*.ring"))


def lost_here(link: Path) -> bool:
    """True for a link to a memory file of this host that is gone (a reboot)."""
    return (link.is_symlink() and not link.exists()
            and Path(os.readlink(link)).name.startswith(f"{_memory_prefix()}{_HOST}-"))


def _map_new(path: Path, size: int) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _allocate(fd, size)
        return mmap.mmap(fd, size, **_MAP_FLAGS)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _aligned(n: int) -> int:
    return (n + 7) & ~7


def file_size(capacity: int) -> int:
    """The bytes of the file of a ring asked to hold `capacity` bytes of records."""
    return HEADER + max(MIN_CAPACITY, _aligned(capacity))


class RingFull(Exception):
    """The consumer is gone and the ring has no room: the record cannot be kept."""


class Ring:
    """One ring file, mapped. Both sides use this class; each moves only its own fields."""

    def __init__(self, path: Path, create: bool = False, capacity: int = DEFAULT_CAPACITY,
                 args: dict[str, Any] | None = None, share: Ring | None = None,
                 prepared: Prepared | None = None) -> None:
        self.path = Path(path)
        self._map: mmap.mmap
        self._owns_map = share is None
        self.file = self.path  # where its bytes are (a link's target when it is one)
        if share is not None:
            # A consumer in the producer's own process maps nothing new: it works on
            # even if the file was deleted under the run (the map keeps its pages).
            self._map = share._map
        elif create:
            size = file_size(capacity)
            capacity = size - HEADER
            self._map, self.file = _create(self.path, size, prepared)
            # The producer before the magic: a ring readable as one always names its
            # producer, which sweep_memory() asks about.
            self._set(PRODUCER, os.getpid())
            self._set(CAPACITY, capacity)
            self._map[:8] = MAGIC
            encoded = json.dumps(args or {}).encode()
            if len(encoded) <= _ARGS_MAX:
                struct.pack_into(f"<I{len(encoded)}s", self._map, ARGS, len(encoded), encoded)
        else:
            fd = os.open(self.path, os.O_RDWR)
            try:
                self._map = mmap.mmap(fd, 0)
            finally:
                os.close(fd)
            if self._map[:8] not in _READABLE:
                raise ValueError(f"{self.path} is not a runstore ring")
        self.capacity = self._get(CAPACITY)
        self._largest = self.capacity // 4  # a bigger record goes to a side file
        # The producer's copy of its own field, and of the tail as last read: in a
        # Cursor that the compiled log() moves too (_fast).
        self.cursor = new_cursor()
        self.cursor.head = self._get(HEAD)
        self.cursor.tail_seen = self._get(TAIL)
        self._spills = 0
        self._layouts = 0  # the producer's: how many it has numbered
        self._layouts_fd: int | None = None  # the producer's side file, kept open
        self._unpackers: list[tuple[tuple[str, ...], Callable[..., tuple[float, ...]]]] = []
        self._unpackers_end = 0  # the consumer's: how far it has read the side file

    def _get(self, field: int) -> int:
        return _U64.unpack_from(self._map, field)[0]

    def _set(self, field: int, value: int) -> None:
        _U64.pack_into(self._map, field, value)

    def close(self) -> None:
        self.cursor.unbind()  # the compiled cursor holds the map open
        if self._layouts_fd is not None:
            os.close(self._layouts_fd)
            self._layouts_fd = None
        if self._owns_map:
            self._map.close()

    # -- producer --------------------------------------------------------------------

    def put(self, data: bytes, wait: Callable[[int], None]) -> None:
        """Append one record (a pickle); while the ring is full, call `wait` with the
        attempt's number (0, 1, ...), and with -1 before writing a side file."""
        n = len(data)
        size = (n + 15) & ~7  # 8 bytes of length and CRC, the payload, padded to 8
        cursor = self.cursor
        head, capacity = cursor.head, self.capacity
        pos = head % capacity
        if (size > self._largest or pos + size > capacity
                or head + size - cursor.tail_seen > capacity):
            self._put_slowly(data, wait)
            return
        m, start = self._map, HEADER + pos
        m[start + 8:start + 8 + n] = data
        _pack_record(m, start, n, _crc32(data))
        cursor.head = head = head + size
        _pack_u64(m, HEAD, head)

    def _put_slowly(self, data: bytes, wait: Callable[[int], None]) -> None:
        """put(), when the record is big, wraps, or may not fit beside what waits."""
        if len(data) + 8 > self._largest:
            wait(-1)  # a side file does not fill the ring: see that the writer lives
            data = self._spill(data)
        n = len(data)
        size = _aligned(8 + n)
        cursor = self.cursor
        head, capacity = cursor.head, self.capacity
        pos = head % capacity
        skip = capacity - pos if pos + size > capacity else 0
        attempt = 0
        while head + skip + size - self._get(TAIL) > capacity:
            wait(attempt)
            attempt += 1
        cursor.tail_seen = self._get(TAIL)
        m = self._map
        if skip:
            _REC.pack_into(m, HEADER + pos, WRAP, 0)
            head += skip
            pos = 0
        start = HEADER + pos
        m[start + 8:start + 8 + n] = data
        _REC.pack_into(m, start, n, zlib.crc32(data))
        cursor.head = head + size
        _U64.pack_into(m, HEAD, cursor.head)

    def add_layout(self, keys: tuple[str, ...]) -> tuple[int, Callable[..., bytes]] | None:
        """Number a packed row's keys (in the side file, before any row uses them): the
        layout's number and the packer of its payload, given (PACKED, number, step,
        timestamp, runtime, *values). None past MAX_LAYOUTS."""
        number = self._layouts
        if number >= MAX_LAYOUTS:
            return None
        entry = pickle.dumps(keys, 5)
        entry = struct.pack("<I", len(entry)) + entry
        # The file is made once and kept open, and a layout is numbered only once it is
        # whole in the file that readers find at its name: if the ring's folder was
        # emptied (or removed and made again) under the run, a file made anew there would
        # number its layouts from 0, and rows would be read with another layout's keys.
        # On any doubt (the file unlinked, a write failed or came out short, which would
        # garble every entry after it), no more layouts: the rows are pickled.
        self._layouts = MAX_LAYOUTS
        if self._layouts_fd is None:
            self._layouts_fd = os.open(_layouts_path(self.path),
                                       os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL,
                                       0o600)
        fd = self._layouts_fd
        if os.fstat(fd).st_nlink == 0 or os.write(fd, entry) != len(entry):
            return None
        self._layouts = number + 1
        return number, struct.Struct(f"{PACKED_HEAD.format}{len(keys)}d").pack

    def _decode(self, data: bytes) -> Any:
        """A record's payload as it was handed over; a packed row as a PackedRow."""
        if data[0] != PACKED:
            return pickle.loads(data)
        _, number, step, timestamp, runtime = PACKED_HEAD.unpack_from(data)
        if number >= len(self._unpackers):
            # Only added to: the file gone (the folder emptied under the run) must not
            # take away the layouts already read.
            layouts, self._unpackers_end = _read_layouts(self.path, self._unpackers_end)
            self._unpackers += [(keys, struct.Struct(f"<{len(keys)}d").unpack_from)
                                for keys in layouts]
        keys, unpack = self._unpackers[number]  # an IndexError makes it Unreadable
        return _packed_row(PackedRow, (step, timestamp, runtime, keys,
                                       unpack(data, PACKED_HEAD.size)))

    def _spill(self, data: bytes) -> bytes:
        self._spills += 1
        side = self.path.with_name(f"{self.path.name}.{self._spills}")
        side.write_bytes(data)
        return pickle.dumps(Spilled(str(side)), 5)

    def acked(self) -> int:
        return self._get(ACKED)

    def hurry(self) -> None:
        """Ask the consumer to commit what is in the ring now, not at its own pace."""
        self._set(URGENT, self.cursor.head)

    def notices(self) -> int:
        return self._get(NOTICES)

    # -- consumer --------------------------------------------------------------------

    def read(self, most: int, size: Callable[[Any], int]) -> tuple[list[Any], int, list[Path]]:
        """Records after tail, up to `most` by `size`: (items, new tail, side files read).
        Nothing moves until commit(new tail)."""
        m, capacity = self._map, self.capacity
        tail, head = self._get(TAIL), self._get(HEAD)
        items: list[Any] = []
        spilled: list[Path] = []
        total = 0
        while tail < head and total < most:
            pos = tail % capacity
            n, crc = _REC.unpack_from(m, HEADER + pos)
            if n == WRAP:
                tail += capacity - pos
                continue
            start = HEADER + pos + 8
            data = m[start:start + n]
            if zlib.crc32(data) != crc:
                break  # not all of it is visible yet: read it next time
            try:
                item = self._decode(data)
                if type(item) is Spilled:
                    spilled.append(Path(item.path))
                    item = self._decode(spilled[-1].read_bytes())
            except Exception as exc:  # one bad record must not stop the writer
                item = Unreadable(repr(exc))
            items.append(item)
            total += size(item)
            tail += (n + 15) & ~7  # _aligned(8 + n), without a call per record
        return items, tail, spilled

    def commit(self, tail: int) -> None:
        self._set(TAIL, tail)

    def ack(self, seq: int) -> None:
        """Everything up to barrier `seq` is committed. Barriers of several threads may
        reach the ring out of their numbers' order, so the mark only moves forward: a
        higher barrier committed means every record put before a lower one's number was
        taken is committed too."""
        if seq > self._get(ACKED):
            self._set(ACKED, seq)

    def noticed(self) -> None:
        self._set(NOTICES, self._get(NOTICES) + 1)

    def tail(self) -> int:
        return self._get(TAIL)

    def drained(self) -> bool:
        return self._get(TAIL) >= self._get(HEAD)

    def urgent(self) -> bool:
        """A flush or finish waits for records not yet committed, or the ring is filling."""
        tail = self._get(TAIL)
        return self._get(URGENT) > tail or self._get(HEAD) - tail > self._largest

    def set_consumer(self, pid: int) -> None:
        self._set(CONSUMER, pid)

    def producer_pid(self) -> int:
        return self._get(PRODUCER)

    def consumer_pid(self) -> int:
        return self._get(CONSUMER)

    def args(self) -> dict[str, Any] | None:
        """The run this ring serves, as its producer wrote it (None if it did not fit)."""
        (n,) = struct.unpack_from("<I", self._map, ARGS)
        return json.loads(self._map[ARGS + 4:ARGS + 4 + n]) if 0 < n <= _ARGS_MAX else None


def pause(attempt: int) -> None:
    """Sleep a little longer on each attempt: 50 µs, 100 µs, ... up to 5 ms."""
    time.sleep(min(5e-5 * 2 ** min(attempt, 7), 5e-3))
