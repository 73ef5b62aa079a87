"""A crash inside `runstore sync`: SIGKILL at random moments while it merges a 1M-point run.

An offline run of 10 keys x 100k steps (built straight through the store functions, in
an offline-run-* directory as `mode="offline"` makes them) is merged into a fresh store
by a real `runstore sync` process, which is killed at a random moment. The store must
then be intact and either without the run or with all of it (never part of it), and a
later `runstore sync` must leave the complete run.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _builders import write_finished_run

from runstore import _store

KEYS = [f"metric_{i}" for i in range(10)]
STEPS = 100_000
POINTS = STEPS * len(KEYS)  # 1M
RUN_ID, PROJECT, ENTITY = "off1", "proj", "e"
RUN_DIR = f"offline-run-20260101_000000-{RUN_ID}"
RANDOM_TRIALS = 3
SYNC = [sys.executable, "-c", "from runstore._cli import main; main()", "sync"]


def _value(step: int, j: int) -> float:
    return step * 0.5 + j


VALUE_SUM = len(KEYS) * 0.5 * STEPS * (STEPS - 1) / 2 + STEPS * sum(range(len(KEYS)))


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> Path:
    """An offline run directory holding one finished run of 1M points; each trial
    syncs a copy of it."""
    run_dir = tmp_path_factory.mktemp("template") / RUN_DIR
    # Closed, so checkpointed: the .db file alone is the offline run.
    write_finished_run(run_dir / _store.STORE_FILENAME, {
        "entity": ENTITY, "project": PROJECT, "id": RUN_ID, "name": "offline run",
        "runtime": 3600.0, "config": {"lr": 0.1}, "summary": {"metric_0": _value(STEPS - 1, 0)},
    }, KEYS, STEPS, _value)
    return run_dir


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach us before a kill
    return env


def _sync(source: Path, target: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*SYNC, str(source), "--dir", str(target)], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def _state(target: Path) -> str:
    """'absent' (no run in the store) or 'complete'; anything else fails the test."""
    db = target / _store.STORE_FILENAME
    if not db.exists():
        return "absent"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = _tables(conn)
        if "runs" not in tables:  # killed while the first migration ran
            assert not tables & {"history", "steps"}, tables
            return "absent"

        def one(sql: str, params=()):
            return conn.execute(sql, params).fetchone()[0]

        history = one("SELECT count(*) FROM history")
        steps = one("SELECT count(*) FROM steps")
        blocks = one("SELECT count(*) FROM history_blocks") if "history_blocks" in tables \
            else 0
        row = conn.execute("SELECT run_key, id, state, synced_from FROM runs").fetchall()
        if not row:
            assert (history, steps, blocks) == (0, 0, 0), "points without their run"
            return "absent"
        ((run_key, run_id, state, synced_from),) = row
        found = {
            "id": run_id, "state": state, "synced_from": Path(synced_from).name,
            "points": history, "steps": steps,
            "run_points": one("SELECT count(*) FROM history WHERE run_key = ?", (run_key,)),
            "sum": one("SELECT total(value) FROM history"),
            "last_step": one("SELECT max(step) FROM history"),
            "keys": one("SELECT count(DISTINCT key_id) FROM history"),
            "blocks": blocks,
            "key_names": sorted(k for (k,) in conn.execute(
                "SELECT k.key FROM metric_keys k WHERE EXISTS (SELECT 1 FROM history h"
                " WHERE h.key_id = k.key_id)")),
        }
        assert found == {
            "id": RUN_ID, "state": "finished", "synced_from": RUN_DIR,
            "points": POINTS, "steps": STEPS, "run_points": POINTS, "sum": VALUE_SUM,
            "last_step": STEPS - 1, "keys": len(KEYS),
            "blocks": len(KEYS) * math.ceil(STEPS / _store.BLOCK), "key_names": KEYS,
        }, "the run is in the store, but not all of it"
        return "complete"
    finally:
        conn.close()


def _trial(offline_run: Path, root: Path, delay: float | None = None,
           after_line: str | None = None) -> dict:
    """Sync a copy of the offline run into a fresh store, SIGKILLed `delay` s after the
    process starts, or as soon as it prints a line containing `after_line` (neither: not
    killed); then check the store, sync again and check it is complete."""
    source = root / "offline" / RUN_DIR
    shutil.copytree(offline_run, source)
    target = root / "store"
    started = time.monotonic()
    proc = _sync(source, target, root)
    kill = delay is not None or after_line is not None
    head = ""
    try:
        if after_line is not None:
            for line in iter(proc.stdout.readline, ""):
                head += line
                if after_line in line:
                    break
        elif delay is not None:
            time.sleep(delay)
        wal = target / (_store.STORE_FILENAME + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        if kill:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        out = head + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - started
    state = _state(target)
    killed = proc.returncode == -signal.SIGKILL
    if not killed:  # not meant to be killed, or it finished before the kill landed
        assert proc.returncode == 0, err
    marker = (source / ".synced").exists()
    if marker:
        assert state == "complete"  # the marker is written only after the commit
    seen = {"kill": after_line or (None if delay is None else f"{delay * 1000:.0f} ms"),
            "state": state, "killed": killed, "keys_copied": out.count(" / "),
            "wal_bytes": wal_bytes, "marker": marker, "took_s": took}
    # A later sync (without --include-synced) always ends with the complete run.
    again = subprocess.run([*SYNC, str(source), "--dir", str(target)], cwd=root, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _state(target) == "complete", seen
    assert (source / ".synced").exists()
    shutil.rmtree(root)
    return seen


def test_sigkill_during_sync_leaves_no_run_or_all_of_it(offline_run, tmp_path):
    calibration = _trial(offline_run, tmp_path / "calibrate")
    assert calibration["state"] == "complete" and calibration["keys_copied"] == len(KEYS)
    window = calibration["took_s"]
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    # Random moments, stratified so they spread over the whole sync, and two chosen
    # ones: halfway through copying the points, and just after the commit.
    kills = [{"delay": window * (i + rng.random()) / RANDOM_TRIALS}
             for i in range(RANDOM_TRIALS)]
    kills += [{"after_line": "500,000 / "}, {"after_line": ": synced "}]
    outcomes = []
    for trial, kill in enumerate(kills):
        seen = _trial(offline_run, tmp_path / f"trial{trial}", **kill)
        outcomes.append({k: seen[k] for k in ("kill", "state", "keys_copied", "wal_bytes",
                                              "killed", "marker")})
    print(f"\nsync of {POINTS:,} points took {calibration['took_s']:.2f} s unkilled; "
          f"kills (seed {seed}):\n" + "\n".join(map(str, outcomes)))
    # Killed halfway through the copy: nothing; killed once the commit is said (it may
    # already have exited by then): everything.
    assert outcomes[-2]["killed"] and outcomes[-2]["state"] == "absent"
    assert outcomes[-1]["state"] == "complete"
