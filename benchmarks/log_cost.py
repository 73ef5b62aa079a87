"""log() cost seen by the training loop, and end-to-end ingest beside raw sqlite3.

    .venv/bin/python benchmarks/log_cost.py [--steps 100000] [--repeats 5]

Prints a table; every figure is a median over --repeats runs in fresh stores,
and ratios compare figures measured in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

import runstore  # noqa: E402
from runstore import _store  # noqa: E402

KEYS = [f"metric_{i}" for i in range(10)]


def runstore_ingest(steps: int, root: Path, queue: int | None = None) -> tuple[float, float, float]:
    """(mean log() µs, p99 log() µs, end-to-end seconds incl. finish).

    With `queue` (values) at least all the values logged, log() never waits for the
    writer: the figures are the caller-thread cost alone. With the default queue, a
    loop that does nothing but log outruns the disk and log() waits (back-pressure),
    so its mean is the writer's pace.
    """
    settings = {"silent": True, **({"log_queue_size": queue} if queue else {})}
    run = runstore.init(project="bench", dir=root, settings=settings)
    rows = [{k: float(i + j) for j, k in enumerate(KEYS)} for i in range(steps)]
    per_call = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for row in rows:
        t0 = clock()
        run.log(row)
        per_call.append(clock() - t0)
    run.finish()
    total = time.perf_counter() - start
    per_call.sort()
    return statistics.fmean(per_call) / 1000, per_call[int(len(per_call) * 0.99)] / 1000, total


def raw_executemany(steps: int, root: Path) -> float:
    """The ceiling: the same rows into the same schema with one executemany, one commit."""
    conn = _store.connect(root / "runstore.db")
    run_key = _store.insert_run(conn, {"entity": "e", "project": "bench", "id": "raw",
                                       "name": "raw", "created_at": "2026-01-01T00:00:00"})
    keys: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, KEYS, keys)
    start = time.perf_counter()
    now = time.time()
    steps_rows = [(run_key, i, now, 0.0) for i in range(steps)]
    points = [(run_key, keys[k], i, float(i + j), None)
              for i in range(steps) for j, k in enumerate(KEYS)]
    with _store.transaction(conn):
        conn.executemany("INSERT INTO steps (run_key, step, timestamp, runtime)"
                         " VALUES (?, ?, ?, ?)", steps_rows)
        conn.executemany("INSERT INTO history (run_key, key_id, step, value, value_json)"
                         " VALUES (?, ?, ?, ?, ?)", points)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def measure(steps: int, repeats: int) -> list[Row]:
    """log() cost and end-to-end ingest beside raw executemany, as table rows."""
    means, p99s, totals, raws, free_means, free_p99s = [], [], [], [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            mean, p99, total = runstore_ingest(steps, Path(tmp) / "a")
            raws.append(raw_executemany(steps, Path(tmp) / "b"))
            free_mean, free_p99, _ = runstore_ingest(steps, Path(tmp) / "c",
                                                     steps * len(KEYS))
        means.append(mean)
        p99s.append(p99)
        totals.append(total)
        free_means.append(free_mean)
        free_p99s.append(free_p99)
    points = steps * len(KEYS)
    rs, raw = statistics.median(totals), statistics.median(raws)
    med = statistics.median
    return [
        ("log() 10 floats, writer keeping up: mean", med(free_means), "µs", "<= 5"),
        ("log() 10 floats, writer keeping up: p99", med(free_p99s), "µs", ""),
        ("log() 10 floats, logging-only loop: mean", med(means), "µs", ""),
        ("log() 10 floats, logging-only loop: p99", med(p99s), "µs", ""),
        ("ingest end-to-end incl. finish()", points / rs, "points/s", ""),
        ("raw sqlite3 executemany, same rows", points / raw, "points/s", ""),
        ("ingest / raw executemany", raw / rs, "%", ">= 60%"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print_table(measure(args.steps, args.repeats),
                f"{args.steps} steps x {len(KEYS)} floats, median of {args.repeats}")


if __name__ == "__main__":
    main()
