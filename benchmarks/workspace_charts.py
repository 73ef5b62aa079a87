"""The workspace charts in headless Chromium: 100 runs x 100k steps x 6 metrics.

    .venv/bin/python benchmarks/workspace_charts.py [--runs 100] [--steps 100000]
        [--metrics 6] [--repeats 5] [--store DIR]

Builds a store (once: with --store DIR an existing one of the same shape is reused):
one run's 6 x 100k points go through the store functions (insert_points keeps
history_blocks current), the other runs are copies made in SQL with each run's values
scaled (so min/max/first/last blocks stay right) and their own config, summary and
group. Serves it with plain `datasette` (the plugin loads from its entry point) on a
loopback port and opens the runs table in Debian's chromium (Playwright, headless,
1440x1000):

- first load after the server started (nothing cached; one sample), then the same page
  again (the server keeps series it drew while their blocks are unchanged): the
  workspace of all runs (`/runstore/runs~2Fbench`, the project's runs table that
  `/-/runstore/workspace?project=bench` opens): when the table is interactive
  (DOMContentLoaded) and when every chart is drawn (the panel's `drawnAt`,
  performance.now() from the navigation's start);
- filter change: the same page with a filter in the URL (a group: 20 runs; lr: about
  33 runs; back to all 100), timed the same way (in Datasette a filter is a new URL, so
  a page load);
- for comparison, the same runs on the `runs` table (`/runstore/runs?project=bench`,
  Datasette's 100 rows a page with the config and summary as JSON cells);
- of each load, the series.json request (runs, keys and the 6 metrics' M4 points in
  one response): from request to last byte, and its size.

Each figure but the first is the median of --repeats page loads. Budgets:
issue 13 (all charts drawn <= 1.5 s; a changed filter redrawn <= 1 s).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

from runstore import _store  # noqa: E402

CHROMIUM = os.environ.get("RUNSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
METRICS = ["train/loss", "train/lr", "val/loss", "val/acc", "tokens_seen", "grad_norm"]
CHUNK = 50_000


def _value(metric: str, step: int, steps: int, rng: random.Random) -> float:
    t = step / steps
    if metric == "tokens_seen":
        return 4096.0 * step
    if metric == "train/lr":
        return 1e-3 * min(1.0, step / 2000) * (1 - 0.9 * t)
    if metric == "val/acc":
        return 1 - 0.9 * 2.718281828 ** (-5 * t) + rng.gauss(0, 0.005)
    if metric == "grad_norm":
        return abs(rng.gauss(1.0, 0.3)) + (20.0 if step % 9973 == 0 else 0.0)
    return 2.5 * 2.718281828 ** (-4 * t) + 0.1 + rng.gauss(0, 0.02)


def build(path: Path, runs: int, steps: int, metrics: int) -> None:
    conn = _store.connect(path)
    names = METRICS[:metrics] + [f"extra/{i}" for i in range(max(0, metrics - len(METRICS)))]
    rng = random.Random(0)
    keys = []
    for i in range(runs):
        lr = [1e-2, 3e-3, 1e-3][i % 3]
        keys.append(_store.insert_run(conn, {
            "entity": "bench", "project": "bench", "id": f"run-{i:03d}", "name": f"run-{i}",
            "state": "finished", "created_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
            "runtime": 3600.0, "run_group": f"group-{i % 5}", "job_type": "train",
            "config": {"lr": lr, "width": [256, 512, 1024, 2048][i % 4],
                       "optimizer": ["adam", "sgd"][i % 2], "seed": i},
            "summary": {"val/loss": 0.1 + rng.random(), "val/acc": rng.uniform(0.6, 0.95)},
        }))
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, names, ids)
    first = keys[0]
    for start in range(0, steps, CHUNK):
        stop = min(start + CHUNK, steps)
        step_rows = [(first, s, 1.7e9 + 0.5 * s, 0.5 * s) for s in range(start, stop)]
        rows = [(first, ids[m], s, _value(m, s, steps, rng), None)
                for m in names for s in range(start, stop)]
        with _store.transaction(conn):
            _store.insert_points(conn, step_rows, rows)
    # The other runs: copies scaled by a positive factor (blocks stay consistent).
    with _store.transaction(conn):
        for i, key in enumerate(keys[1:], 1):
            f = 0.7 + 0.6 * i / runs
            conn.execute("INSERT INTO steps SELECT ?, step, timestamp, runtime * ? FROM steps"
                         " WHERE run_key = ?", (key, f, first))
            conn.execute("INSERT INTO history SELECT ?, key_id, step, value * ?, value_json"
                         " FROM history WHERE run_key = ?", (key, f, first))
            conn.execute(
                "INSERT INTO history_blocks SELECT ?, key_id, block, n, first_step,"
                " first_value * ?, last_step, last_value * ?, min_step, min_value * ?,"
                " max_step, max_value * ? FROM history_blocks WHERE run_key = ?",
                (key, f, f, f, f, first))
    conn.close()


def _shape(path: Path) -> tuple[int, int] | None:
    try:
        conn = _store.connect(path)
        try:
            runs = conn.execute("SELECT count(*) FROM runs WHERE project = 'bench'").fetchone()[0]
            last = conn.execute("SELECT max(step) FROM steps WHERE run_key ="
                                " (SELECT min(run_key) FROM runs)").fetchone()[0]
        finally:
            conn.close()
        return runs, (last or 0) + 1
    except Exception:
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "datasette", str(path), "--port", str(port),
         "--setting", "sql_time_limit_ms", "10000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("datasette did not start")


TIMES_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const ws = window.runstoreWorkspace;
  const series = performance.getEntriesByType("resource")
    .filter((r) => r.name.indexOf("/series.json") >= 0);
  const last = series[series.length - 1];
  return {interactive: nav.domContentLoadedEventEnd, drawn: ws.drawnAt,
          seriesMs: last ? last.responseEnd - last.requestStart : null,
          seriesKb: last ? last.encodedBodySize / 1000 : null,
          drawMs: last ? ws.drawnAt - last.responseEnd : null,
          requests: series.length,
          charts: ws.charts.filter((c) => c.u).length,
          lines: ws.charts.reduce((n, c) => n + c.lines, 0)};
}"""


def _load(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    page.wait_for_function("() => window.runstoreWorkspace && window.runstoreWorkspace.drawnAt",
                           timeout=60_000)
    return dict(page.evaluate(TIMES_JS))


def measure(runs: int = 100, steps: int = 100_000, metrics: int = 6, repeats: int = 5,
            store: Path | None = None) -> list[Row]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        path = (store or Path(tmp)) / _store.STORE_FILENAME
        built = 0.0
        if _shape(path) != (runs, steps):
            if path.exists():
                path.unlink()
            start = time.perf_counter()
            build(path, runs, steps, metrics)
            built = time.perf_counter() - start
        port = _free_port()
        server = _serve(path, port)
        # The workspace: the project's runs table (runs/bench, 25 rows a page; the charts
        # ask the table's JSON for the run_keys of all 100), as
        # /-/runstore/workspace?project=bench redirects to it.
        base = f"http://127.0.0.1:{port}/runstore/runs~2Fbench"
        runs_table = f"http://127.0.0.1:{port}/runstore/runs?project=bench"
        cases = [
            ("all runs again", base, runs),
            ("filter: one group (run_group=group-1)", base + "?run_group=group-1", None),
            ("filter: lr = 0.001", base + "?config.lr=0.001", None),
            ("filter removed: all runs again", base, runs),
            ("all runs, on the runs table (runs?project=bench, 100 rows a page)",
             runs_table, runs),
        ]
        rows: list[Row] = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                # The first load after the server started: nothing cached (one sample).
                first = _load(page, base)
                rows.append(("first load after server start: table interactive",
                             first["interactive"], "ms", ""))
                rows.append(("first load after server start: all charts drawn",
                             first["drawn"], "ms", "<= 1500"))
                rows.append(("  series.json: request to last byte", first["seriesMs"], "ms", ""))
                for name, url, _ in cases:
                    samples = [_load(page, url) for _ in range(repeats)]
                    drawn = statistics.median(s["drawn"] for s in samples)
                    ready = statistics.median(s["interactive"] for s in samples)
                    budget = ("<= 1500" if name == "all runs again" else
                              "" if name.startswith("all runs,") else "<= 1000")
                    rows.append((f"{name}: table interactive", ready, "ms", ""))
                    rows.append((f"{name}: all charts drawn", drawn, "ms", budget))
                    rows.append(("  series.json: request to last byte",
                                 statistics.median(s["seriesMs"] for s in samples), "ms", ""))
                    rows.append(("  series.json: body", samples[-1]["seriesKb"], "kB", ""))
                    rows.append(("  drawing (last byte to all charts drawn)",
                                 statistics.median(s["drawMs"] for s in samples), "ms", ""))
                    rows.append(("  charts drawn", samples[-1]["charts"], "charts", ""))
                    rows.append(("  lines drawn", samples[-1]["lines"], "lines", ""))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
        if built:
            rows.append(("store build (not a UI figure)", built, "s", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--metrics", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None,
                        help="keep the store in this directory and reuse it next time")
    args = parser.parse_args()
    if args.store:
        args.store.mkdir(parents=True, exist_ok=True)
    rows = measure(args.runs, args.steps, args.metrics, args.repeats, args.store)
    print_table(rows, f"Workspace charts: {args.runs} runs x {args.steps:,} steps x "
                      f"{args.metrics} metrics; headless Chromium 1440x1000, median of "
                      f"{args.repeats} page loads")


if __name__ == "__main__":
    main()
