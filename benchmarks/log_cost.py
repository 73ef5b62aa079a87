"""log() cost seen by the training loop, and end-to-end ingest beside raw sqlite3.

    .venv/bin/python benchmarks/log_cost.py [--steps 100000] [--work-steps 20000]
                                            [--repeats 5] [--hosts process thread]

The loop is benchmarks/_loop.py's, as users write it: each step does ~100 µs of work
(none, sleep, numpy or pure Python), builds its row of 10 floats, and calls log().
For each writer host (its own process, the default; or a thread of the training
process, the fallback) it prints log()'s mean and p99 per kind of work, and the
end-to-end ingest of the logging-only loop (from the first log() through finish())
beside a raw executemany of the same rows into the same schema, in the same process.
Every figure is a median over --repeats runs in fresh stores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _loop import KEYS, WORK_KINDS, log_loop, machine_speed, make_work, mean_us, p99_us  # noqa: E402
from _table import Row, print_table  # noqa: E402

import runstore  # noqa: E402
from runstore import _store  # noqa: E402

HOSTS = ("process", "thread")


def runstore_loop(root: Path, host: str, kind: str, steps: int) -> tuple[list[int], float]:
    """(each log()'s ns, seconds from the first log() through finish())."""
    settings: dict = {"silent": True, "disable_stats": True}
    if host == "thread":
        settings["writer_process"] = False
    run = runstore.init(project="bench", dir=root, settings=settings)
    work = make_work(kind)
    start = time.perf_counter()
    per_call, _ = log_loop(run.log, steps, work)
    run.finish()
    return per_call, time.perf_counter() - start


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


def measure(steps: int, repeats: int, work_steps: int | None = None,
            hosts: tuple[str, ...] = HOSTS) -> list[Row]:
    """log() cost per host and kind of work, and ingest beside raw executemany."""
    work_steps = work_steps or max(steps // 5, 1)
    costs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    totals: dict[str, list[float]] = {host: [] for host in hosts}
    raws, speeds = [], []
    for _ in range(repeats):
        speeds.append(machine_speed())
        with tempfile.TemporaryDirectory() as tmp:
            raws.append(raw_executemany(steps, Path(tmp) / "raw"))
            for host in hosts:
                for kind in WORK_KINDS:
                    n = steps if kind == "none" else work_steps
                    per_call, total = runstore_loop(Path(tmp) / f"{host}-{kind}", host, kind, n)
                    costs.setdefault((host, kind), []).append(
                        (mean_us(per_call), p99_us(per_call)))
                    if kind == "none":
                        totals[host].append(total)
    med = statistics.median
    points = steps * len(KEYS)
    raw = med(raws)
    rows: list[Row] = [("machine: ns per bare Python loop iteration", med(speeds), "ns", "")]
    for host in hosts:
        for kind in WORK_KINDS:
            loop = "logging-only loop" if kind == "none" else f"~100 µs {kind} work"
            pairs = costs[(host, kind)]
            budget = "" if kind == "none" else "<= 3"
            rows.append((f"{host}: log() 10 floats, {loop}: mean",
                         med(m for m, _ in pairs), "µs", budget))
            rows.append((f"{host}: log() 10 floats, {loop}: p99",
                         med(p for _, p in pairs), "µs", "" if kind == "none" else "<= 10"))
        rate = points / med(totals[host])
        rows.append((f"{host}: ingest end-to-end incl. finish()", rate, "points/s", ""))
        rows.append((f"{host}: ingest / raw executemany", rate / (points / raw), "%",
                     ">= 60%"))
    rows.append(("raw sqlite3 executemany, same rows", points / raw, "points/s", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--work-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hosts", nargs="+", choices=HOSTS, default=list(HOSTS))
    args = parser.parse_args()
    print_table(measure(args.steps, args.repeats, args.work_steps, tuple(args.hosts)),
                f"{args.steps} steps ({args.work_steps} with work) x {len(KEYS)} floats, "
                f"median of {args.repeats}")


if __name__ == "__main__":
    main()
