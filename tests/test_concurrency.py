"""Many real processes writing one store at once, and the UI reading while they write.

(a) A sweep: 8 processes, each its own run of 100k points (10k steps x 10 keys), all
logging to one store file at the same moment. Every point must be there afterwards
(count and checksum per run), no child may see `database is locked` (or anything else
on stderr), and all exit 0. The aggregate throughput is printed (visible with -s) and
written to RESULTS_FILE.

(b) `runstore ui` reading while runs write: 2 writer processes log for a few seconds,
first alone, then while this process GETs the run list and a run page through
Datasette's own test client. Every page answers 200, and the writers' pace with
readers stays within a generous bound of their pace without.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from datasette.app import Datasette

from runstore import _store

# Where the measured numbers go (besides stdout); read at import, before the test
# isolation clears RUNSTORE_* variables.
RESULTS_FILE = Path(os.environ.get(
    "RUNSTORE_RESULTS_FILE",
    Path(tempfile.gettempdir()) / "runstore-reliability-results.json",
))
KEYS = 10
CHILD_SETTINGS = {"silent": True, "disable_git": True}

# A child logs `steps` steps of KEYS keys (or, with steps 0, for `seconds`) to run
# w<idx>, starting when the file `go` appears; values are exact integers so the
# checksum is exact. It prints "ready", then one JSON line of timings.
_WRITER = f"""
    import json, os, sys, time
    import runstore
    store, go, idx, steps, seconds = sys.argv[1:6]
    idx, steps, seconds = int(idx), int(steps), float(seconds)
    run = runstore.init(project="sweep", id=f"w{{idx}}", dir=store,
                        settings={CHILD_SETTINGS!r})
    keys = [f"k{{j}}" for j in range({KEYS})]
    base = idx * 1_000_000_000.0
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.0005)
    t0 = time.perf_counter()
    step = 0
    if steps:
        for step in range(steps):
            v = base + step * {KEYS}
            run.log({{k: v + j for j, k in enumerate(keys)}})
        step = steps
    else:
        end = t0 + seconds
        while True:
            for _ in range(100):
                v = base + step * {KEYS}
                run.log({{k: v + j for j, k in enumerate(keys)}})
                step += 1
            if time.perf_counter() >= end:
                break
    t1 = time.perf_counter()
    run.finish()
    t2 = time.perf_counter()
    print(json.dumps({{"steps": step, "log_s": t1 - t0, "total_s": t2 - t0}}), flush=True)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    return env


def _start_writers(store: Path, go: Path, n: int, steps: int, seconds: float,
                   cwd: Path) -> list[subprocess.Popen]:
    procs = [subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(store), str(go), str(i),
         str(steps), str(seconds)],
        cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for i in range(n)]
    for proc in procs:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            for p in procs:
                p.kill()
            pytest.fail(f"a writer did not start: {line!r}\n{proc.communicate()[1]}")
    return procs


def _finish_writers(procs: list[subprocess.Popen], timeout: float = 120) -> list[dict]:
    """Wait for every writer; each must exit 0 with nothing at all on stderr."""
    reports = []
    try:
        for i, proc in enumerate(procs):
            out, err = proc.communicate(timeout=timeout)
            assert "locked" not in err, f"writer {i} saw a locked database:\n{err}"
            assert proc.returncode == 0, f"writer {i} exited {proc.returncode}:\n{err}"
            assert err == "", f"writer {i} wrote to stderr:\n{err}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return reports


def _expected_sum(idx: int, steps: int) -> float:
    base = idx * 1_000_000_000.0
    return steps * KEYS * base + KEYS * KEYS * steps * (steps - 1) / 2 + steps * sum(range(KEYS))


def _check_runs(store: Path, steps_by_run: dict[int, int]) -> None:
    """Every point of every run is there, once, with the value it was logged with."""
    conn = sqlite3.connect(store / _store.STORE_FILENAME)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for idx, steps in steps_by_run.items():
            key, state = conn.execute(
                "SELECT run_key, state FROM runs WHERE id = ?", (f"w{idx}",)).fetchone()
            assert state == "finished"
            points, total, first, last = conn.execute(
                "SELECT count(*), sum(value), min(step), max(step) FROM history"
                " WHERE run_key = ?", (key,)).fetchone()
            assert (points, first, last) == (steps * KEYS, 0, steps - 1), idx
            assert total == _expected_sum(idx, steps), idx
            assert conn.execute("SELECT count(*) FROM steps WHERE run_key = ?",
                                (key,)).fetchone() == (steps,)
    finally:
        conn.close()


def _record(name: str, numbers: dict) -> None:
    """Print a result line and add it to RESULTS_FILE (one JSON object per test)."""
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
    try:
        results = json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):
        results = {}
    results[name] = {**numbers, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                     "cpus": os.cpu_count()}
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {RESULTS_FILE})")


SWEEP_PROCESSES = 8
SWEEP_STEPS = 10_000  # x KEYS = 100k points per run


def test_sweep_of_8_processes_keeps_every_point(tmp_path):
    store, go = tmp_path / "store", tmp_path / "go"
    _store.connect(store / _store.STORE_FILENAME).close()  # created once, as a sweep's is
    procs = _start_writers(store, go, SWEEP_PROCESSES, SWEEP_STEPS, 0, tmp_path)
    started = time.perf_counter()
    go.touch()
    reports = _finish_writers(procs)
    wall = time.perf_counter() - started
    _check_runs(store, {i: SWEEP_STEPS for i in range(SWEEP_PROCESSES)})
    points = SWEEP_PROCESSES * SWEEP_STEPS * KEYS
    _record("sweep_8_processes", {
        "processes": SWEEP_PROCESSES, "points": points, "wall_s": round(wall, 2),
        "points_per_s": round(points / wall),
        "slowest_process_s": round(max(r["total_s"] for r in reports), 2),
        "log_loop_s_max": round(max(r["log_s"] for r in reports), 2),
    })


READ_WRITERS = 2
WRITE_SECONDS = 3.0
REQUESTS = 30


async def _read_while_writing(db: Path, run_keys: list[int], procs: list) -> list[tuple]:
    """GET the run list and the writers' run pages, spread over the writers' window,
    until REQUESTS are made; returns (url, status, seconds) per request."""
    ds = Datasette([str(db)])
    name = ds.get_database().name
    urls = [f"/{name}/run_list"]
    for key in run_keys:
        urls += [f"/{name}/-/runstore/run/{key}",
                 f"/{name}/-/runstore/run/{key}/metric.json?key=k0"]
    seen = []
    gap = WRITE_SECONDS / REQUESTS
    start = time.perf_counter()
    for i in range(REQUESTS):
        url = urls[i % len(urls)]
        t0 = time.perf_counter()
        response = await ds.client.get(url)
        seen.append((url, response.status_code, time.perf_counter() - t0,
                     all(p.poll() is None for p in procs)))
        await asyncio.sleep(max(0.0, start + (i + 1) * gap - time.perf_counter()))
    return seen


def _rate(reports: list[dict]) -> float:
    """Points per second over the writers, each from its start to its finish()."""
    return sum(r["steps"] * KEYS / r["total_s"] for r in reports)


@pytest.mark.ui
def test_ui_reads_while_runs_write(tmp_path):
    rates = {}
    for phase in ("alone", "with_readers"):
        store, go = tmp_path / phase, tmp_path / f"go-{phase}"
        _store.connect(store / _store.STORE_FILENAME).close()
        procs = _start_writers(store, go, READ_WRITERS, 0, WRITE_SECONDS, tmp_path)
        db = store / _store.STORE_FILENAME
        conn = sqlite3.connect(db)
        run_keys = [k for (k,) in conn.execute("SELECT run_key FROM runs ORDER BY run_key")]
        conn.close()
        go.touch()
        seen = []
        if phase == "with_readers":
            time.sleep(0.3)  # let the runs get some history first
            seen = asyncio.run(_read_while_writing(db, run_keys, procs))
        reports = _finish_writers(procs)
        _check_runs(store, {i: r["steps"] for i, r in enumerate(reports)})
        rates[phase] = _rate(reports)
        if seen:
            bad = [s for s in seen if s[1] != 200]
            assert not bad, f"pages that did not answer 200 while runs wrote: {bad}"
            during = [s for s in seen if s[3]]
            assert len(during) >= REQUESTS // 2, "most reads must overlap the writes"
            latencies = sorted(s[2] for s in seen)
    ratio = rates["with_readers"] / rates["alone"]
    _record("ui_reads_while_2_writers", {
        "writers": READ_WRITERS, "seconds": WRITE_SECONDS, "requests": REQUESTS,
        "points_per_s_alone": round(rates["alone"]),
        "points_per_s_with_readers": round(rates["with_readers"]),
        "ratio": round(ratio, 2),
        "requests_during_writes": len(during),
        "request_ms_median": round(latencies[len(latencies) // 2] * 1000, 1),
        "request_ms_max": round(latencies[-1] * 1000, 1),
    })
    assert ratio >= 0.5, f"writers slowed to {ratio:.0%} of their pace by readers"
