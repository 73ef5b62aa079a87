"""The workspace's runs table on a big project: 10,000 runs, each with 20 config keys
and 17 summary keys (aggregates of val/acc and val/loss among them), in one project.

    .venv/bin/python benchmarks/workspace_table.py [--runs 10000] [--repeats 7]

Every figure is the median of --repeats requests through Datasette's test client (in
process, no network: server time), after one warm-up request, on the project's view
`runs/bench` (schema 012; 25 rows a page); "SQL" rows time the same statement through
sqlite3 alone. The first sort by a key is timed alone: it makes the key's index (schema
013). Write costs: insert_run and a summary rewrite (as the writer does with each
commit), each in its own transaction, median of 200, with 0, 1 and 8 key indexes.
Budgets (issue 13): sorted by a summary metric <= 200 ms, search <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

from _table import Row, print_table  # noqa: E402

from runstore import _store  # noqa: E402
from runstore._store import _runs_table  # noqa: E402

VIEW = "/runstore/runs~2Fbench"
WORDS = ["alpha", "beta", "gamma", "delta", "sweep", "wide", "deep", "baseline", "ablation"]


def _run(i: int, rng: random.Random) -> dict[str, Any]:
    acc = rng.random()
    return {
        "entity": "bench", "project": "bench", "id": f"run-{i:05d}",
        "name": f"run-{i} {rng.choice(WORDS)}", "state": "finished",
        "created_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "runtime": rng.uniform(10, 10_000), "tags": ["sweep", f"seed-{i % 5}"],
        "notes": f"{rng.choice(WORDS)} run {i}\nsecond line", "run_group": f"g{i % 20}",
        "config": {"optimizer": {"name": rng.choice(["adamw", "sgd", "lion"]),
                                 "lr": 10 ** rng.uniform(-5, -1)},
                   "batch_size": rng.choice([16, 32, 64, 128]), "seed": i,
                   "model": {"depth": rng.randint(2, 24), "width": 256},
                   **{f"hp{k}": rng.random() for k in range(15)}},
        "summary": _summary(rng, acc),
    }


def _summary(rng: random.Random, acc: float) -> dict[str, Any]:
    return {"val/acc": {"max": acc, "min": acc / 3, "last": acc * 0.9},
            "val/loss": {"min": rng.random()}, "train/loss": rng.random(),
            "_step": 1000, "epoch": 10, **{f"m{k}": rng.random() for k in range(10)}}


def build(path: Path, runs: int) -> float:
    """The store; returns the seconds insert_run took per run (triggers included)."""
    conn = _store.connect(path)
    rng = random.Random(0)
    start = time.perf_counter()
    with _store.transaction(conn):
        for i in range(runs):
            _store.insert_run(conn, _run(i, rng))
    per_run = (time.perf_counter() - start) / runs
    _store.refresh_workspace_views(conn)
    conn.close()
    return per_run


async def _timed(client: Any, url: str, repeats: int) -> float:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = await client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _sql_ms(path: Path, sql: str, repeats: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute(sql).fetchall()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    return statistics.median(times)


def _write_costs(path: Path, indexes: int, repeats: int = 200) -> tuple[float, float]:
    """(insert_run, a summary rewrite) in µs, each in its own transaction as the writer
    commits, with `indexes` summary keys of the project indexed (schema 013)."""
    conn = _store.connect(path)
    for (index_id,) in conn.execute("SELECT index_id FROM project_key_indexes").fetchall():
        conn.execute(f'DROP INDEX "{_runs_table.KEY_INDEX_PREFIX}{index_id}"')
    conn.execute("DELETE FROM project_key_indexes")
    keys = ["summary.val/acc.max", "summary.val/acc.min", "summary.val/acc.last",
            "summary.val/loss.min", "summary.train/loss", *(f"summary.m{k}" for k in range(10))]
    for column in keys[:indexes]:
        _runs_table.ensure_key_index(conn, "bench", column)
    rng = random.Random(indexes)
    inserts, updates = [], []
    for i in range(repeats):
        start = time.perf_counter()
        with _store.transaction(conn):
            run_key = _store.insert_run(conn, _run(100_000 * (indexes + 1) + i, rng))
        inserts.append(time.perf_counter() - start)
        summary = _summary(rng, rng.random())
        start = time.perf_counter()
        with _store.transaction(conn):
            _store.update_run(conn, run_key, {"summary": summary})
        updates.append(time.perf_counter() - start)
    conn.execute("DELETE FROM run_records WHERE id >= 'run-100000'")
    conn.close()
    return statistics.median(inserts) * 1e6, statistics.median(updates) * 1e6


async def _routes(path: Path, repeats: int) -> list[Row]:
    from datasette.app import Datasette

    ds = Datasette([str(path)])
    await ds.invoke_startup()
    client = ds.client
    sort = "_sort_desc=summary.val%2Facc.max"
    start = time.perf_counter()  # the first sort by the key indexes it (schema 013)
    response = await client.get(f"{VIEW}.json?{sort}")
    assert response.status_code == 200, response.text[:300]
    rows: list[Row] = [("first sort by summary val/acc.max (makes its index), JSON",
                        (time.perf_counter() - start) * 1000, "ms", "")]
    cases = [
        ("sorted by summary val/acc.max, JSON", f"{VIEW}.json?{sort}", "<= 200"),
        ("  the same, with a facet (state)", f"{VIEW}.json?{sort}&_facet=state", ""),
        ("sorted by summary val/acc.max, HTML page (25 rows)", f"{VIEW}?{sort}", "<= 200"),
        ("  the same, 50 rows (_size=50)", f"{VIEW}?{sort}&_size=50", ""),
        ("filtered (optimizer = adamw, lr < 1e-3), sorted, JSON",
         f"{VIEW}.json?config.optimizer.name__exact=adamw&config.optimizer.lr__lt=0.001"
         f"&{sort}", ""),
        ("search 'gamma', JSON", f"{VIEW}.json?_search=gamma", "<= 50"),
        ("search 'gamma', HTML page", f"{VIEW}?_search=gamma", ""),
        ("search a config value ('lion') on run_list, JSON",
         "/runstore/run_list.json?_search=lion&_nofacet=1", "<= 50"),
        ("run_list search with its five facets, JSON",
         "/runstore/run_list.json?_search=lion", ""),
    ]
    return rows + [(name, await _timed(client, url, repeats), "ms", budget)
                   for name, url, budget in cases]


def measure(runs: int = 10_000, repeats: int = 7) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _store.STORE_FILENAME
        per_run = build(path, runs)
        rows: list[Row] = [(f"insert_run with keys + FTS triggers ({runs:,} runs)",
                            per_run * 1e6, "µs/run", "")]
        rows += asyncio.run(_routes(path, repeats))
        rows.append(("SQL: view sorted by summary val/acc.max, 101 rows", _sql_ms(
            path, 'SELECT * FROM "runs/bench" ORDER BY "summary.val/acc.max" DESC LIMIT 101',
            repeats), "ms", ""))
        rows.append(("SQL: FTS match 'gamma' (count)", _sql_ms(
            path, "SELECT count(*) FROM run_records_fts WHERE run_records_fts MATCH 'gamma'",
            repeats), "ms", ""))
        for indexes in (0, 1, _runs_table.MAX_KEY_INDEXES):
            insert, update = _write_costs(path, indexes)
            rows.append((f"insert_run, own transaction, {indexes} key indexes", insert,
                         "µs", ""))
            rows.append((f"summary rewrite (update_run), own transaction, {indexes} key indexes",
                         update, "µs", ""))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print_table(measure(args.runs, args.repeats),
                f"workspace runs table: {args.runs:,} runs in one project, 37 key columns")


if __name__ == "__main__":
    main()
