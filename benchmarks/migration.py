"""How long an existing store takes to upgrade in place to the newest schema.

    .venv/bin/python benchmarks/migration.py [--points 10000000] [--from-version 6]

Builds a store at --from-version (the schema files up to it), fills its history
with --points points (100 keys x points/100 steps of one run, plus their steps),
then times `runstore._store.migrate()` on it: the real upgrade a user's store gets
on the first `init()` of a newer runstore.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import print_table  # noqa: E402

from runstore._store import _schema  # noqa: E402


def build(path: Path, version: int, points: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for number, sql_file in _schema.migrations():
        if number > version:
            break
        conn.execute("BEGIN")
        for statement in _schema._statements(sql_file.read_text()):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO runs (entity, project, id, name, created_at) "
                 "VALUES ('e', 'p', 'r', 'r', '2026-01-01T00:00:00')")
    keys = 100
    conn.executemany("INSERT INTO metric_keys (key) VALUES (?)",
                     [(f"m{k}",) for k in range(keys)])
    steps = points // keys
    conn.executemany("INSERT INTO steps VALUES (1, ?, 0.0, 0.0)", ((s,) for s in range(steps)))
    conn.executemany("INSERT INTO history VALUES (1, ?, ?, ?, NULL)",
                     ((k + 1, s, s * 0.5) for k in range(keys) for s in range(steps)))
    conn.execute("COMMIT")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--from-version", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runstore.db"
        build(path, args.from_version, args.points)
        size = path.stat().st_size
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        start = time.perf_counter()
        version = _schema.migrate(conn)
        seconds = time.perf_counter() - start
        kept = conn.execute("SELECT count(*) FROM history").fetchone()[0]
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    assert kept == args.points // 100 * 100 and ok == "ok"
    print_table([
        (f"migrate v{args.from_version} -> v{version}, {args.points:,} points "
         f"({size / 1e6:.0f} MB)", seconds, "s", ""),
        ("  points per second", kept / seconds, "points/s", ""),
    ])


if __name__ == "__main__":
    main()
