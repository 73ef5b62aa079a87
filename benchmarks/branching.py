"""Rewind (resume_from), unrewind and fork (fork_from) of a 1M-point run.

    .venv/bin/python benchmarks/branching.py [--steps 100000] [--repeats 5]

The source run (10 keys x --steps steps) is written once straight through the
store functions; every repeat works on a fresh copy of that file. Each figure is
a median over --repeats; the branch step is the middle step, so half the points
move (rewind, unrewind) or are copied (fork). The raw sqlite3 lines do the same
row movement with bare INSERT ... SELECT / DELETE statements in one transaction,
as a ceiling for what runstore's wrapping (checks, summary, run row) costs.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

from _builders import fresh_copy, write_finished_run  # noqa: E402
from _table import Row, print_table  # noqa: E402

import runstore  # noqa: E402
from runstore import _store  # noqa: E402

KEYS = [f"metric_{i}" for i in range(10)]
ENTITY, PROJECT, SOURCE = "bench", "bench", "source"
SETTINGS = {"silent": True, "disable_git": True}


def build_source(root: Path, steps: int) -> Path:
    """A finished run with len(KEYS) x steps float points; returns the store file."""
    path = root / _store.STORE_FILENAME
    write_finished_run(path, {"entity": ENTITY, "project": PROJECT, "id": SOURCE,
                              "name": SOURCE, "runtime": float(steps)},
                       KEYS, steps, lambda s, j: float(s) + j)
    return path


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rewind_and_unrewind(root: Path, step: int) -> tuple[float, float]:
    """(seconds for init(resume_from=...), seconds for Api.unrewind)."""
    runs = []
    seconds = timed(lambda: runs.append(runstore.init(
        entity=ENTITY, project=PROJECT, dir=root, resume_from=f"{SOURCE}?_step={step}",
        settings=SETTINGS)))
    runs[0].finish()
    api = runstore.Api(root)
    try:
        undo = timed(lambda: api.unrewind(f"{PROJECT}/{SOURCE}"))
    finally:
        api.close()
    return seconds, undo


def fork(root: Path, step: int) -> float:
    runs = []
    seconds = timed(lambda: runs.append(runstore.init(
        entity=ENTITY, project=PROJECT, dir=root, id="fork",
        fork_from=f"{SOURCE}?_step={step}", settings=SETTINGS)))
    runs[0].finish()
    return seconds


def raw_moves(root: Path, step: int) -> tuple[float, float]:
    """(archive-and-delete seconds, copy seconds) with bare SQL on the same schema."""
    conn = sqlite3.connect(root / _store.STORE_FILENAME, isolation_level=None)
    run_key = conn.execute("SELECT run_key FROM runs WHERE id = ?", (SOURCE,)).fetchone()[0]
    target = conn.execute(
        "INSERT INTO run_records (entity, project, id, name, created_at)"
        " VALUES (?, ?, 'raw', 'raw', ?)",
        (ENTITY, PROJECT, "2026-01-01T00:00:00+00:00"),
    ).lastrowid

    def copy() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO history SELECT ?, key_id, step, value, value_json FROM history"
                     " WHERE run_key = ? AND step <= ?", (target, run_key, step))
        conn.execute("INSERT INTO steps SELECT ?, step, timestamp, runtime FROM steps"
                     " WHERE run_key = ? AND step <= ?", (target, run_key, step))
        conn.execute("COMMIT")

    def move() -> None:
        conn.execute("BEGIN IMMEDIATE")
        event = conn.execute("INSERT INTO run_events (run_key, relation, step, at)"
                             " VALUES (?, 'rewind', ?, 'now')", (run_key, step)).lastrowid
        conn.execute("INSERT INTO history_archive SELECT ?, run_key, key_id, step, value,"
                     " value_json FROM history WHERE run_key = ? AND step > ?",
                     (event, run_key, step))
        conn.execute("DELETE FROM history WHERE run_key = ? AND step > ?", (run_key, step))
        conn.execute("INSERT INTO steps_archive SELECT ?, run_key, step, timestamp, runtime"
                     " FROM steps WHERE run_key = ? AND step > ?", (event, run_key, step))
        conn.execute("DELETE FROM steps WHERE run_key = ? AND step > ?", (run_key, step))
        conn.execute("COMMIT")

    try:
        copied = timed(copy)
        moved = timed(move)
    finally:
        conn.close()
    return moved, copied


def measure(steps: int, repeats: int) -> list[Row]:
    """Rewind, unrewind and fork at the middle of a steps x 10 run, as table rows."""
    step = steps // 2 - 1  # the middle: steps 0..step stay, the rest move
    kept = (step + 1) * len(KEYS)
    moved = steps * len(KEYS) - kept
    rewinds, undos, forks, raw_rewinds, raw_forks = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        template = build_source(tmp_path / "template", steps)
        for i in range(repeats):
            rewind, undo = rewind_and_unrewind(fresh_copy(template, tmp_path / f"r{i}"), step)
            rewinds.append(rewind)
            undos.append(undo)
            forks.append(fork(fresh_copy(template, tmp_path / f"f{i}"), step))
            raw_rewind, raw_fork = raw_moves(fresh_copy(template, tmp_path / f"x{i}"), step)
            raw_rewinds.append(raw_rewind)
            raw_forks.append(raw_fork)
            for name in (f"r{i}", f"f{i}", f"x{i}"):
                shutil.rmtree(tmp_path / name)
    rewind, undo, fork_s = (statistics.median(x) for x in (rewinds, undos, forks))
    raw_rewind, raw_fork = statistics.median(raw_rewinds), statistics.median(raw_forks)
    size = f"{steps * len(KEYS) / 1e6:g}M-point run"
    return [
        (f"rewind of a {size} at its middle", rewind, "s", "<= 1"),
        ("rewind: points archived per second", moved / rewind, "points/s", ""),
        ("raw sqlite3 archive + delete of the same rows", raw_rewind, "s", ""),
        ("unrewind (Api.unrewind)", undo, "s", ""),
        (f"fork of a {size} at its middle", fork_s, "s", "<= 1"),
        ("fork: points copied per second", kept / fork_s, "points/s", ">= 1M"),
        ("raw sqlite3 INSERT ... SELECT copy", kept / raw_fork, "points/s", ""),
        ("fork / raw copy speed", raw_fork / fork_s, "%", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print_table(measure(args.steps, args.repeats), f"median of {args.repeats}")


if __name__ == "__main__":
    main()
