"""The Datasette UI on a big store: a 1M-point metric and a 10,000-run list.

    .venv/bin/python benchmarks/ui.py [--points 1000000] [--runs 10000] [--repeats 5]

The store is built once through the store functions (insert_run, insert_points,
which keep history_blocks current). Every figure is the median of --repeats
requests through Datasette's test client (in process, no network), after one
warm-up request; the "old path" row times M4 over raw points (what the chart-data
route did before it read history_blocks) as a store call, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

from runstore import _store  # noqa: E402
from runstore._store import _chart  # noqa: E402

CHUNK = 100_000
PROJECTS = [f"project-{i}" for i in range(10)]
STATES = ["finished"] * 8 + ["failed", "crashed"]


def build(path: Path, points: int, runs: int) -> int:
    """A store with one run of `points` steps of `loss` (one spike) and `runs` small
    runs; returns the big run's run_key."""
    conn = _store.connect(path)
    big = _store.insert_run(conn, {
        "entity": "bench", "project": "big", "id": "big", "name": "a million points",
        "state": "finished", "created_at": "2026-01-01T00:00:00+00:00", "runtime": 3600.0,
        "config": {"lr": 1e-3, "batch_size": 256}, "summary": {"loss": 0.1},
    })
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, ["loss", "val/acc"], ids)
    spike = points * 2 // 3
    for start in range(0, points, CHUNK):
        stop = min(start + CHUNK, points)
        steps = [(big, s, 1.7e9 + s, float(s)) for s in range(start, stop)]
        rows = [(big, ids["loss"], s, 1e6 if s == spike else math.exp(-s / points) +
                 0.01 * math.sin(s), None) for s in range(start, stop)]
        with _store.transaction(conn):
            _store.insert_points(conn, steps, rows)
    rng = random.Random(0)
    with _store.transaction(conn):
        for i in range(runs):
            acc = round(rng.uniform(0.5, 0.99), 4)
            _store.insert_run(conn, {
                "entity": "bench", "project": PROJECTS[i % len(PROJECTS)], "id": f"run-{i:05d}",
                "name": f"run-{i}", "state": STATES[i % len(STATES)],
                "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00+00:00",
                "runtime": rng.uniform(10, 10_000), "tags": ["sweep", f"seed-{i % 5}"],
                "run_group": f"group-{i % 20}", "job_type": "train",
                "config": {"lr": rng.choice([1e-2, 1e-3, 1e-4]), "batch_size": 64,
                           "optimizer": {"name": rng.choice(["adam", "sgd"])}},
                "summary": {"val/acc": {"max": acc, "last": acc - 0.01},
                            "train/loss": round(rng.uniform(0.01, 1), 4), "epoch": 10},
            })
    conn.close()
    return big


async def _timed(client: Any, url: str, repeats: int) -> tuple[float, Any]:
    """Median milliseconds of GET `url` (after one warm-up) and the last response."""
    response = await client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = await client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), response


async def _measure_routes(path: Path, big: int, points: int, repeats: int) -> list[Row]:
    from datasette.app import Datasette

    client = Datasette([str(path)]).client
    run = f"/runstore/-/runstore/run/{big}"
    chart = f"{run}/metric.json?key=loss"
    tenth, mid = points // 10, points // 2
    cases = [
        (f"run page of the {points:,}-point run", run, "<= 1000"),
        ("chart data, whole range", chart, "<= 1000"),
        (f"chart data, zoom to {tenth:,} steps", f"{chart}&min_step={mid}"
         f"&max_step={mid + tenth - 1}", ""),
        ("chart data, zoom to 2,000 steps (exact)", f"{chart}&min_step={mid}"
         f"&max_step={mid + 1999}", ""),
        ("run_list, first page", "/runstore/run_list", ""),
        ("canned query: best run per project (val/acc)",
         "/runstore/best_run_per_project?metric=val/acc&project=&goal=", ""),
    ]
    rows: list[Row] = []
    for name, url, budget in cases:
        ms, response = await _timed(client, url, repeats)
        rows.append((name, ms, "ms", budget))
        if "metric.json" in url:
            data = response.json()
            rows.append((f"  points returned (of {data['total']:,})", len(data["steps"]),
                         "points", ""))
    return rows


def _old_path_ms(path: Path, big: int, repeats: int) -> float:
    """M4 over the raw points of the whole range, 1,000 buckets (the route before blocks)."""
    conn = _store.connect(path)
    key_id = conn.execute("SELECT key_id FROM metric_keys WHERE key = 'loss'").fetchone()[0]
    lo, hi = conn.execute("SELECT min(step), max(step) FROM history WHERE run_key = ?"
                          " AND key_id = ?", (big, key_id)).fetchone()
    width = -(-(hi - lo + 1) // 1000)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _chart.raw_buckets(conn, big, key_id, lo, hi, origin=lo, width=width)
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    return statistics.median(times)


def measure(quick: bool = False, points: int | None = None, runs: int | None = None,
            repeats: int = 5) -> list[Row]:
    points = points or (100_000 if quick else 1_000_000)
    runs = runs or (1_000 if quick else 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _store.STORE_FILENAME
        start = time.perf_counter()
        big = build(path, points, runs)
        built = time.perf_counter() - start
        rows = asyncio.run(_measure_routes(path, big, points, repeats))
        rows.insert(3, ("chart data, whole range, raw-point M4 (old path)",
                        _old_path_ms(path, big, repeats), "ms", ""))
        rows.append(("store build (not a UI figure)", built, "s", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = measure(points=args.points, runs=args.runs, repeats=args.repeats)
    print_table(rows, f"UI: one run of {args.points:,} points of one metric beside "
                      f"{args.runs:,} runs; Datasette test client, median of {args.repeats}")


if __name__ == "__main__":
    main()
