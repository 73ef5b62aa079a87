"""The per-block summaries stay equal to a from-scratch computation over the history."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict

import runstore
from runstore import _store


def brute_blocks(db) -> dict:
    conn = sqlite3.connect(db)
    blocks: dict = defaultdict(list)
    for run_key, key_id, step, value in conn.execute(
            "SELECT run_key, key_id, step, value FROM history ORDER BY run_key, key_id, step"):
        if value is not None and math.isfinite(value):
            blocks[(run_key, key_id, step // _store.BLOCK)].append((step, value))
    out = {}
    for key, points in blocks.items():
        low = min(points, key=lambda p: (p[1], p[0]))
        high = max(points, key=lambda p: (p[1], -p[0]))
        out[key] = (len(points), *points[0], *points[-1], low[1], high[1])
    stored = {
        (r[0], r[1], r[2]): (r[3], r[4], r[5], r[6], r[7], r[8], r[9])
        for r in conn.execute(
            "SELECT run_key, key_id, block, n, first_step, first_value, last_step, last_value,"
            " min_value, max_value FROM history_blocks")
    }
    conn.close()
    return out, stored


def wave(i: int) -> float:
    return math.sin(i / 37.0) * (1 + i % 11)


def test_blocks_follow_writes_rewind_fork_and_sync(tmp_path):
    store = tmp_path / "store"
    run = runstore.init(project="p", id="src", dir=store,
                        settings={"log_queue_size": 64})
    for i in range(5000):
        row = {"a": wave(i), "b": float(i)}
        if i % 97 == 0:
            row["a"] = float("nan")
        if i == 1234:
            row["b"] = float("inf")
        run.log(row)
    run.finish()
    expected, stored = brute_blocks(store / "runstore.db")
    assert stored == expected and len(stored) == 10

    runstore.init(project="p", dir=store, resume_from="src?_step=3000").finish()
    expected, stored = brute_blocks(store / "runstore.db")
    assert stored == expected
    runstore.init(project="p", id="kid", dir=store, fork_from="src?_step=2100").finish()
    runstore.Api(store).unrewind("p/src")
    expected, stored = brute_blocks(store / "runstore.db")
    assert stored == expected

    offline = runstore.init(project="p", id="off", mode="offline", dir=tmp_path / "o")
    for i in range(3000):
        offline.log({"c": wave(i)})
    offline.finish()
    from runstore._sync import sync

    sync([offline.dir], store / "runstore.db", say=lambda _: None)
    sync([offline.dir], store / "runstore.db", include_synced=True, say=lambda _: None)
    expected, stored = brute_blocks(store / "runstore.db")
    assert stored == expected


def test_migration_builds_blocks_for_an_older_store(tmp_path):
    from runstore._store import _schema

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for version, migration in _schema.migrations()[:3]:
        conn.executescript(migration.read_text() + f"\nPRAGMA user_version = {version};")
    conn.execute("INSERT INTO runs (entity, project, id, name, created_at) VALUES "
                 "('e', 'p', 'r', 'n', '2025-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO metric_keys (key) VALUES ('x')")
    conn.executemany("INSERT INTO history (run_key, key_id, step, value) VALUES (1, 1, ?, ?)",
                     [(i, wave(i)) for i in range(3000)])
    conn.commit()
    conn.close()
    _store.connect(path).close()
    expected, stored = brute_blocks(path)
    assert stored == expected and len(stored) == 3


def test_m4_points_are_each_bucket_s_distinct_first_min_max_last_in_step_order() -> None:
    """Against the definition, on buckets of 1 to 5 points whose extremes fall on every
    position (the first or last point being the min or max, min and max on one point)."""
    import random

    from runstore._store._chart import _m4_points

    rng = random.Random(7)
    for _ in range(300):
        buckets, expected = {}, []
        for b in range(rng.randint(1, 6)):
            steps = sorted(rng.sample(range(b * 100, b * 100 + 100), rng.randint(1, 5)))
            values = {s: float(rng.randint(0, 3)) for s in steps}  # ties on purpose
            low = min(steps, key=values.__getitem__)
            high = max(steps, key=values.__getitem__)
            first, last = steps[0], steps[-1]
            buckets[b] = [len(steps), first, values[first], last, values[last],
                          low, values[low], high, values[high]]
            expected += [(s, values[s]) for s in sorted({first, low, high, last})]
        assert _m4_points(buckets) == expected
