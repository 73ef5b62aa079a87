"""Import, init(), read-back, memory, disk and many-runs figures for `make bench`.

    .venv/bin/python benchmarks/core.py [--quick]

Each figure is a median of repeats; every measure() returns rows of
(measure, value, unit, budget) so benchmarks/run_all.py can print one table.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

import runstore  # noqa: E402
from runstore import _store  # noqa: E402

KEYS = [f"metric_{i}" for i in range(10)]


def _fresh_python(code: str, cwd: Path, env: dict | None = None) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {})}).stdout


def import_ms(repeats: int) -> float:
    """`import runstore` in fresh processes, minus the interpreter's own start-up."""
    code = ("import time; t = time.perf_counter(); import runstore; "
            "print((time.perf_counter() - t) * 1000)")
    with tempfile.TemporaryDirectory() as tmp:
        return statistics.median(float(_fresh_python(code, Path(tmp))) for _ in range(repeats))


def init_ms(repeats: int) -> tuple[float, float]:
    """init() latency in a git repository: (store exists, new store)."""
    code = """
import time, runstore, sys
t = time.perf_counter()
run = runstore.init(project="p", dir=sys.argv[1] if len(sys.argv) > 1 else "store",
                    settings={"silent": True})
print((time.perf_counter() - t) * 1000)
run.finish()
"""
    warm, cold = [], []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i",
                     "--allow-empty"]):
            subprocess.run(cmd, cwd=repo, check=True)
        for i in range(repeats):
            warm.append(float(_fresh_python(code, repo)))
            cold.append(float(subprocess.run(
                [sys.executable, "-c", code, f"new-{i}"], cwd=repo, capture_output=True,
                text=True, check=True).stdout))
    return statistics.median(warm[1:] or warm), statistics.median(cold)


def _build_run(root: Path, steps: int) -> tuple[str, Path]:
    run = runstore.init(project="bench", dir=root, settings={"silent": True})
    for i in range(steps):
        # Fractional, as losses are: a whole float packs into fewer bytes (REAL affinity
        # once stored it as an integer), which flattered bytes per point.
        run.log({k: i * 0.001 + j for j, k in enumerate(KEYS)})
    run.finish()
    return run.id, root / _store.STORE_FILENAME


def read_back(steps: int, repeats: int) -> tuple[float, float, float]:
    """(scan_history ms, raw SELECT ms, bytes per point) for one metric of a run of
    `steps` steps x 10 keys."""
    with tempfile.TemporaryDirectory() as tmp:
        run_id, db = _build_run(Path(tmp) / "s", steps)
        api_run = runstore.Api(Path(tmp) / "s").run(f"bench/{run_id}")
        conn = sqlite3.connect(db)
        run_key, key_id = conn.execute(
            "SELECT r.run_key, k.key_id FROM runs r, metric_keys k WHERE k.key = 'metric_3'"
        ).fetchone()
        api_times, raw_times = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            n = sum(1 for _ in api_run.scan_history(keys=["metric_3"]))
            api_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            rows = conn.execute("SELECT step, value FROM history WHERE run_key = ? AND key_id = ?"
                                " ORDER BY step", (run_key, key_id)).fetchall()
            raw_times.append(time.perf_counter() - t)
            assert n == len(rows) == steps
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute(
            "PRAGMA page_size").fetchone()[0]
        conn.close()
    return (statistics.median(api_times) * 1000, statistics.median(raw_times) * 1000,
            size / (steps * len(KEYS)))


MEMORY_CHILD = """
import json, sys, runstore
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
steps = int(sys.argv[1])
keys = [f"metric_{i}" for i in range(10)]
run = runstore.init(project="mem", dir="store", settings={"silent": True})
run.log({k: 0.0 for k in keys})
start, peak = rss(), 0
for i in range(1, steps):
    run.log({k: float(i) for k in keys})
    if i % 50_000 == 0:
        peak = max(peak, rss())
run.finish()
print(json.dumps({"growth": max(peak, rss()) - start}))
"""


def memory_growth(steps: int) -> float:
    """RSS growth (MB) while logging steps x 10 floats in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(steps)], cwd=tmp,
                             capture_output=True, text=True, check=True).stdout
    return json.loads(out)["growth"] / 1e6


CONSOLE_CHILD = """
import sys, time, runstore
n = int(sys.argv[1])
if sys.argv[2] == "captured":
    run = runstore.init(project="c", dir="store", settings={"silent": True})
line = "epoch 3 step 1200 loss 0.1234 acc 0.9876"
t = time.perf_counter()
for _ in range(n):
    print(line)
sys.stderr.write(str((time.perf_counter() - t) / n * 1e6))
"""


def console_print_us(lines: int, repeats: int) -> tuple[float, float]:
    """print() of one line, µs: (plain, with console capture), stdout to /dev/null."""
    plain, captured = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for mode, into in (("plain", plain), ("captured", captured)):
                with open(os.devnull, "w") as sink:
                    done = subprocess.run([sys.executable, "-c", CONSOLE_CHILD, str(lines), mode],
                                          cwd=tmp, stdout=sink, stderr=subprocess.PIPE,
                                          text=True, check=True)
                into.append(float(done.stderr.strip().splitlines()[-1]))
    return statistics.median(plain), statistics.median(captured)


def many_runs(n: int, repeats: int) -> tuple[float, float]:
    """(run-list page query ms, best-run-by-metric query ms) on a store of n runs."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = _store.connect(Path(tmp) / "runstore.db")
        with _store.transaction(conn):
            for i in range(n):
                _store.insert_run(conn, {
                    "entity": "e", "project": f"p{i % 10}", "id": f"r{i}", "name": f"run-{i}",
                    "created_at": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}+00:00",
                    "state": "finished", "config": {"lr": i / n, "layers": i % 7},
                    "summary": {"val/acc": (i * 7919 % n) / n, "loss": 1 - i / n}})
        list_sql = "SELECT * FROM run_list ORDER BY created_at DESC LIMIT 100"
        best_sql = ("SELECT id, name, json_extract(summary, '$.\"val/acc\"') AS acc FROM runs"
                    " WHERE project = ? ORDER BY acc DESC LIMIT 1")
        list_t, best_t = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            conn.execute(list_sql).fetchall()
            list_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            conn.execute(best_sql, ("p3",)).fetchall()
            best_t.append(time.perf_counter() - t)
        conn.close()
    return statistics.median(list_t) * 1000, statistics.median(best_t) * 1000


def measure(quick: bool = False) -> list[Row]:
    repeats = 3 if quick else 7
    read_steps = 10_000 if quick else 100_000
    imp = import_ms(repeats)
    warm, cold = init_ms(repeats)
    api_ms, raw_ms, bpp = read_back(read_steps, repeats)
    growth = memory_growth(100_000 if quick else 1_000_000)
    list_ms, best_ms = many_runs(1_000 if quick else 10_000, repeats)
    print_plain, print_captured = console_print_us(20_000 if quick else 200_000, repeats)
    points = f"{read_steps // 1000}k"
    return [
        ("import runstore", imp, "ms", "<= 80"),
        ("init(), git repo, store exists", warm, "ms", "<= 30"),
        ("init(), git repo, new store", cold, "ms", ""),
        (f"scan_history of one {points}-point metric", api_ms, "ms", ""),
        (f"raw SELECT of the same {points} points", raw_ms, "ms", ""),
        ("scan_history / raw SELECT", api_ms / raw_ms, "x", "<= 2"),
        ("bytes on disk per point", bpp, "B", "<= 24"),
        (f"RSS growth logging {'1M' if quick else '10M'} points", growth, "MB", "<= 50"),
        (f"run_list first 100 of {'1k' if quick else '10k'} runs", list_ms, "ms", ""),
        ("best run by a summary metric", best_ms, "ms", ""),
        ("print() of a line, no capture", print_plain, "µs", ""),
        ("print() of a line, console captured", print_captured, "µs", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    print_table(measure(parser.parse_args().quick))


if __name__ == "__main__":
    main()
