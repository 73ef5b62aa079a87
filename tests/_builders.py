"""A large finished run written straight through the store functions (no `init`, no
writer thread), for the crash tests and the branching benchmark to work on copies of.

Imported as `_builders` by tests (pytest puts tests/ on sys.path) and by
benchmarks/branching.py (which puts tests/ on sys.path itself)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runstore import _store

CHUNK_STEPS = 10_000  # steps per executemany
FINISHED = {
    "state": "finished", "created_at": "2026-01-01T00:00:00+00:00",
    "finished_at": "2026-01-01T01:00:00+00:00", "exit_code": 0,
}


def write_finished_run(path: Path, fields: dict[str, Any], keys: Sequence[str], steps: int,
                       value: Callable[[int, int], float]) -> None:
    """Writes one finished run (its runs row: `FINISHED` with `fields`) to the store
    file `path`: len(keys) x steps points, value(step, j) for the j-th key at a step
    (steps 0..steps-1, step s at unix time 1.7e9 + s with runtime s). The connection is
    closed, which checkpoints the WAL: the file alone is the whole store."""
    conn = _store.connect(path)
    run_key = _store.insert_run(conn, {**FINISHED, **fields})
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, keys, ids)
        for first in range(0, steps, CHUNK_STEPS):
            span = range(first, min(steps, first + CHUNK_STEPS))
            _store.insert_points(
                conn,
                [(run_key, s, 1.7e9 + s, float(s)) for s in span],
                [(run_key, ids[k], s, value(s, j), None) for s in span
                 for j, k in enumerate(keys)],
            )
    conn.close()


def fresh_copy(template: Path, root: Path) -> Path:
    """A new store directory `root` holding a copy of the store file `template`."""
    root.mkdir(parents=True)
    shutil.copyfile(template, root / _store.STORE_FILENAME)
    return root
