"""A cluster, simulated: nodes publish into one inbox while a hub merges.

    .venv/bin/python benchmarks/cluster.py [--nodes 8] [--steps 20000]
                                           [--lag-seconds 90] [--interval 30]

Two measurements, on this one machine (every "node" is a process with a directory of its
own standing in for its local disk; the inbox and the hub's store are directories too):

1. Merge throughput. --nodes processes each log --steps steps of 10 floats at full speed,
   publishing every second; then the hub (runstore._hub.Hub, as `runstore sync --watch`
   runs it) merges every published file. Printed: points/s of the merge alone, beside a
   raw executemany of the same number of points into the same schema.
2. End-to-end lag at the default publish interval (--interval, 30 s). --nodes processes
   log one step of 10 floats (and its wall-clock time) every 0.1 s for --lag-seconds,
   while `runstore sync --watch` merges; a reader polls the hub's store every 0.2 s and
   notes when each step becomes visible. Printed: the median and max of (visible - logged).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

from runstore import _hub, _store  # noqa: E402

NODE = """
    import sys, time, runstore
    node, inbox, steps, interval, pace = sys.argv[1:6]
    run = runstore.init(project="cluster", dir=node, settings={
        "publish_dir": inbox, "publish_interval": float(interval), "disable_stats": True})
    for i in range(int(steps)):
        row = {f"m{j}": i * 0.5 + j for j in range(9)}
        row["t"] = time.time()
        run.log(row)
        if float(pace):
            time.sleep(float(pace))
    run.finish()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    return env


def _nodes(root: Path, inbox: Path, count: int, steps: int, interval: float,
           pace: float) -> list[subprocess.Popen]:
    return [subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(NODE), str(root / f"node{i}"), str(inbox),
         str(steps), str(interval), str(pace)], env=_env()) for i in range(count)]


def merge_throughput(root: Path, nodes: int, steps: int) -> list[Row]:
    inbox = root / "inbox"
    inbox.mkdir()
    for proc in _nodes(root, inbox, nodes, steps, 1.0, 0.0):
        proc.wait()
    files = sorted(inbox.glob("*.db"))
    hub = _hub.Hub(root / "hub" / "runstore.db", say=lambda _: None)
    start = time.perf_counter()
    _hub._collect(inbox, hub.archive)
    moved = time.perf_counter()
    merged = hub.merge_archive()
    done = time.perf_counter()
    points = hub.points
    hub.close()
    raw = _raw_executemany(root / "raw.db", points)
    return [
        ("published files merged", merged, "files", ""),
        ("points merged", points, "points", ""),
        ("move inbox -> archive", moved - start, "s", ""),
        ("merge: points/s", points / (done - moved), "points/s", ""),
        ("raw executemany, same points: points/s", raw, "points/s", ""),
        ("merge / raw executemany", points / (done - moved) / raw, "%", ""),
    ] if len(files) == merged else []


def _raw_executemany(path: Path, points: int) -> float:
    conn = _store.connect(path)
    key = _store.insert_run(conn, {"entity": "e", "project": "p", "id": "raw", "name": "raw",
                                   "created_at": "2026-01-01T00:00:00"})
    keys: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, [f"m{j}" for j in range(10)], keys)
    ids = list(keys.values())
    rows = [(key, ids[i % 10], i // 10, float(i), None) for i in range(points)]
    start = time.perf_counter()
    with _store.transaction(conn):
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", rows)
    took = time.perf_counter() - start
    conn.close()
    return points / took


def lag(root: Path, nodes: int, seconds: float, interval: float) -> list[Row]:
    inbox, hub_dir = root / "lag-inbox", root / "lag-hub"
    inbox.mkdir()
    hub = subprocess.Popen(
        [sys.executable, "-c", "from runstore._cli import main; main()", "sync", "--watch",
         str(inbox), "--dir", str(hub_dir)], env=_env(), stdout=subprocess.DEVNULL)
    steps = int(seconds / 0.1)
    writers = _nodes(root, inbox, nodes, steps, interval, 0.1)
    seen: dict[tuple[str, int], float] = {}
    store = hub_dir / "runstore.db"
    deadline = time.monotonic() + seconds + 3 * interval + 120
    while len(seen) < nodes * steps and time.monotonic() < deadline:
        time.sleep(0.2)
        if not store.exists():
            continue
        now = time.time()
        conn = sqlite3.connect(store)
        try:
            rows = conn.execute(
                "SELECT r.id, h.step, h.value FROM history h JOIN run_records r USING"
                " (run_key) JOIN metric_keys k USING (key_id) WHERE k.key = 't'").fetchall()
        except sqlite3.OperationalError:  # the hub is still creating the schema
            rows = []
        finally:
            conn.close()
        for run_id, step, logged in rows:
            seen.setdefault((run_id, step), now - logged)
    for w in writers:
        w.wait()
    hub.terminate()
    hub.wait()
    lags = sorted(seen.values())
    return [
        (f"publish interval {interval:.0f} s: points seen", len(lags), "points", ""),
        ("end-to-end lag (log() -> hub store): median", statistics.median(lags), "s", ""),
        ("end-to-end lag: max", lags[-1], "s", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--lag-seconds", type=float, default=90.0)
    parser.add_argument("--interval", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = merge_throughput(root, args.nodes, args.steps)
        rows += lag(root, args.nodes, args.lag_seconds, args.interval)
    print_table(rows, f"{args.nodes} nodes; {args.steps} steps x 10 floats each for the "
                      f"merge; one step per 0.1 s for {args.lag_seconds:.0f} s for the lag")


if __name__ == "__main__":
    main()
