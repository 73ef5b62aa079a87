"""Rewind, fork and resume across real processes: SIGKILL mid-transaction, racing resumes.

A child process is killed (SIGKILL) at a random moment while it rewinds or forks a
1M-point run; the store must then be exactly in the state before the lifecycle
change or exactly in the state after it, never between. Two processes resuming the
same finished run at the same moment: one wins, the other is told the run is live.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _builders import fresh_copy, write_finished_run

import runstore
from runstore import _store

KEYS = [f"metric_{i}" for i in range(10)]
STEPS = 100_000
POINTS = STEPS * len(KEYS)  # 1M
ENTITY, PROJECT, SOURCE, FORK = "e", "proj", "src", "child"
STEP = STEPS // 2 - 1  # rewind / fork here: steps 0..STEP stay, STEP+1.. move
KEPT = (STEP + 1) * len(KEYS)
TRIALS = 4
KILL_WINDOW_S = 0.4
CHILD_SETTINGS = {"silent": True, "disable_git": True}


def _value(step: int, j: int) -> float:
    return float(step) + j


def _value_sum(last_step: int) -> float:
    """Sum of every point's value over steps 0..last_step."""
    n = last_step + 1
    return len(KEYS) * n * (n - 1) / 2 + n * sum(range(len(KEYS)))


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNSTORE_", "WANDB_"))}
    env["RUNSTORE_SILENT"] = "true"
    return env


def _spawn(code: str, *args: str | os.PathLike, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(os.fspath, args)],
        cwd=cwd, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store holding one finished run of 10 keys x 100k steps, written straight
    through the store functions; each trial works on a copy of the file."""
    root = tmp_path_factory.mktemp("template")
    path = root / _store.STORE_FILENAME
    write_finished_run(path, {"entity": ENTITY, "project": PROJECT, "id": SOURCE,
                              "name": SOURCE, "runtime": float(STEPS)},
                       KEYS, STEPS, _value)
    assert not path.with_name(path.name + "-wal").exists()  # the .db file alone is the store
    return path


def _delays(seed: int, window: float) -> list[float]:
    """One random delay per trial, stratified so the trials spread over the window."""
    rng = random.Random(seed)
    width = window / TRIALS
    return [width * (i + rng.random()) for i in range(TRIALS)]


_BRANCH_CHILD = f"""
    import sys, time
    import runstore
    root, kind, moment = sys.argv[1:4]
    settings = {CHILD_SETTINGS!r}
    print("start", flush=True)
    if kind == "rewind":
        runstore.init(entity={ENTITY!r}, project={PROJECT!r}, dir=root, resume_from=moment,
                      settings=settings)
    else:
        runstore.init(entity={ENTITY!r}, project={PROJECT!r}, dir=root, id={FORK!r},
                      fork_from=moment, settings=settings)
    print("done", flush=True)
    time.sleep(120)
"""


def _kill_during(kind: str, root: Path, delay: float | None, cwd: Path) -> dict:
    """Start a child doing `kind` on root's store and SIGKILL it `delay` s after it says
    it is about to call init(); with delay None, only once init() has returned.
    Returns what was seen at the kill."""
    proc = _spawn(_BRANCH_CHILD, root, kind, f"{SOURCE}?_step={STEP}", cwd=cwd)
    try:
        first = proc.stdout.readline()
        started = time.monotonic()
        if first.strip() != "start":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the {kind} child did not start: {first!r}\n{err}")
        returned = delay is None
        if delay is None:
            done = proc.stdout.readline()
            delay = time.monotonic() - started
            if done.strip() != "done":
                proc.kill()
                _, err = proc.communicate(timeout=30)
                pytest.fail(f"the {kind} child failed: {done!r}\n{err}")
        else:
            time.sleep(delay)
        wal = root / (_store.STORE_FILENAME + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        proc.kill()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.fail(f"the {kind} child exited by itself (code {proc.returncode}) before the "
                    f"kill at {delay * 1000:.0f} ms; stdout {out!r}\nstderr:\n{err}")
    return {"pid": proc.pid, "delay_s": delay, "wal_bytes": wal_bytes,
            "init_returned": returned or "done" in out}


def _integrity(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _one(conn: sqlite3.Connection, sql: str, params=()):
    return conn.execute(sql, params).fetchone()[0]


def _rewind_snapshot(conn: sqlite3.Connection) -> dict:
    key = _one(conn, "SELECT run_key FROM runs WHERE id = ?", (SOURCE,))
    events = conn.execute(
        "SELECT relation, run_key, step, rows_moved, undone_at FROM run_events"
    ).fetchall()
    return {
        "runs": _one(conn, "SELECT count(*) FROM runs"),
        "state": _after_death(_one(conn, "SELECT state FROM runs WHERE run_key = ?", (key,))),
        "live_points": _one(conn, "SELECT count(*) FROM history WHERE run_key = ?", (key,)),
        "live_last_step": _one(conn, "SELECT max(step) FROM history WHERE run_key = ?", (key,)),
        "live_sum": _one(conn, "SELECT total(value) FROM history WHERE run_key = ?", (key,)),
        "live_steps": _one(conn, "SELECT count(*) FROM steps WHERE run_key = ?", (key,)),
        "archived_points": _one(conn, "SELECT count(*) FROM history_archive"),
        "archived_first_step": _one(conn, "SELECT min(step) FROM history_archive"),
        "archived_sum": _one(conn, "SELECT total(value) FROM history_archive"),
        "archived_steps": _one(conn, "SELECT count(*) FROM steps_archive"),
        "archive_events": _one(conn, "SELECT count(DISTINCT event_id) FROM history_archive"),
        "events": [tuple(e[:1]) + ((e[1] == key),) + tuple(e[2:]) for e in events],
    }


REWIND_BEFORE = {
    "runs": 1, "state": "finished", "live_points": POINTS, "live_last_step": STEPS - 1,
    "live_sum": _value_sum(STEPS - 1), "live_steps": STEPS,
    "archived_points": 0, "archived_first_step": None, "archived_sum": 0.0,
    "archived_steps": 0, "archive_events": 0, "events": [],
}
REWIND_AFTER = {
    "runs": 1, "state": "running or crashed", "live_points": KEPT, "live_last_step": STEP,
    "live_sum": _value_sum(STEP), "live_steps": STEP + 1,
    "archived_points": POINTS - KEPT, "archived_first_step": STEP + 1,
    "archived_sum": _value_sum(STEPS - 1) - _value_sum(STEP),
    "archived_steps": STEPS - STEP - 1, "archive_events": 1,
    "events": [("rewind", True, STEP, POINTS - KEPT, None)],
}


def _after_death(state: str) -> str:
    """A run whose process was killed after init() made it: `running` as written, or
    `crashed` once its writer process (if it had started) saw the death."""
    return "running or crashed" if state in ("running", "crashed") else state


def _fork_snapshot(conn: sqlite3.Connection) -> dict:
    src = _one(conn, "SELECT run_key FROM runs WHERE id = ?", (SOURCE,))
    child = conn.execute(
        "SELECT run_key, parent_run_key, fork_step, state FROM runs WHERE id = ?", (FORK,)
    ).fetchone()
    snap = {
        "runs": _one(conn, "SELECT count(*) FROM runs"),
        "source_state": _one(conn, "SELECT state FROM runs WHERE run_key = ?", (src,)),
        "source_points": _one(conn, "SELECT count(*) FROM history WHERE run_key = ?", (src,)),
        "source_steps": _one(conn, "SELECT count(*) FROM steps WHERE run_key = ?", (src,)),
        "all_points": _one(conn, "SELECT count(*) FROM history"),
        "all_steps": _one(conn, "SELECT count(*) FROM steps"),
        "archived_points": _one(conn, "SELECT count(*) FROM history_archive"),
        "events": [(rel, parent == src, step, rows) for rel, parent, step, rows in conn.execute(
            "SELECT relation, parent_run_key, step, rows_moved FROM run_events")],
        "child": None,
    }
    if child is not None:
        key, parent, fork_step, state = child
        snap["child"] = {
            "parent_is_source": parent == src, "fork_step": fork_step,
            "state": _after_death(state),
            "points": _one(conn, "SELECT count(*) FROM history WHERE run_key = ?", (key,)),
            "last_step": _one(conn, "SELECT max(step) FROM history WHERE run_key = ?", (key,)),
            "sum": _one(conn, "SELECT total(value) FROM history WHERE run_key = ?", (key,)),
            "steps": _one(conn, "SELECT count(*) FROM steps WHERE run_key = ?", (key,)),
            # every copied point equals the source's point at the same key and step
            "mismatched": _one(conn, (
                "SELECT count(*) FROM history c LEFT JOIN history s ON s.run_key = ?"
                " AND s.key_id = c.key_id AND s.step = c.step"
                " WHERE c.run_key = ? AND s.value IS NOT c.value"), (src, key)),
        }
    return snap


FORK_BEFORE = {
    "runs": 1, "source_state": "finished", "source_points": POINTS, "source_steps": STEPS,
    "all_points": POINTS, "all_steps": STEPS, "archived_points": 0, "events": [],
    "child": None,
}
FORK_AFTER = {
    **FORK_BEFORE, "runs": 2, "all_points": POINTS + KEPT, "all_steps": STEPS + STEP + 1,
    "events": [("fork", True, STEP, KEPT)],
    "child": {"parent_is_source": True, "fork_step": STEP, "state": "running or crashed",
              "points": KEPT, "last_step": STEP, "sum": _value_sum(STEP), "steps": STEP + 1,
              "mismatched": 0},
}


def _check_before_or_after(kind: str, root: Path, seen: dict, snapshot, before, after) -> str:
    conn = sqlite3.connect(root / _store.STORE_FILENAME)
    try:
        _integrity(conn)
        found = snapshot(conn)
    finally:
        conn.close()
    if found == before:
        return "before"
    if found == after:
        return "after"
    diff_before = {k: v for k, v in found.items() if v != before[k]}
    diff_after = {k: v for k, v in found.items() if v != after[k]}
    pytest.fail(f"after SIGKILL during {kind} ({seen}) the store is neither before nor after;"
                f"\n differs from before in {diff_before}\n differs from after in {diff_after}")


def _phase(state: str, seen: dict) -> str:
    """Where the kill landed, as far as the outside can tell."""
    if state == "after":
        return "after commit" + (" (init returned)" if seen["init_returned"] else "")
    return "mid-transaction" if seen["wal_bytes"] else "before any WAL write"


def _trial(kind: str, root: Path, delay: float | None, cwd: Path) -> tuple[dict, str]:
    snapshot, before, after = {
        "rewind": (_rewind_snapshot, REWIND_BEFORE, REWIND_AFTER),
        "fork": (_fork_snapshot, FORK_BEFORE, FORK_AFTER),
    }[kind]
    seen = _kill_during(kind, root, delay, cwd)
    state = _check_before_or_after(kind, root, seen, snapshot, before, after)
    if kind == "rewind":
        # The killed writer is gone (reaped): its run is not live, so it can be
        # resumed whatever state the kill left.
        run = runstore.init(entity=ENTITY, project=PROJECT, dir=root, id=SOURCE,
                            resume="must", settings=CHILD_SETTINGS)
        assert run.step == (STEPS if state == "before" else STEP + 1)
        run.finish()
    shutil.rmtree(root)
    return seen, state


@pytest.mark.parametrize("kind", ["rewind", "fork"])
def test_sigkill_during_branch_leaves_before_or_after(kind, template, tmp_path):
    # Calibration: killed only once init() has returned, the store must be in the
    # after state; how long that took sets the window the random kills land in.
    seen, state = _trial(kind, fresh_copy(template, tmp_path / "calibrate"), None, tmp_path)
    assert state == "after", seen
    took = seen["delay_s"]
    window = max(KILL_WINDOW_S, 1.25 * took)
    seed = random.randrange(2**32)
    outcomes = []
    for trial, delay in enumerate(_delays(seed, window)):
        root = fresh_copy(template, tmp_path / f"trial{trial}")
        seen, state = _trial(kind, root, delay, tmp_path)
        outcomes.append((round(delay * 1000), state, _phase(state, seen)))
    print(f"{kind}: init() took {took * 1000:.0f} ms unkilled; kills "
          f"(ms after start, seed {seed}): {outcomes}")


_RESUME_CHILD = f"""
    import os, sys, time
    import runstore
    root, go, me = sys.argv[1:4]
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.0005)
    try:
        run = runstore.init(entity={ENTITY!r}, project={PROJECT!r}, dir=root, id="shared",
                            resume="must", settings={CHILD_SETTINGS!r})
    except runstore.UsageError as exc:
        print("LOST", exc, flush=True)
        sys.exit(3)
    print("WON", run.step, flush=True)
    for _ in range(20):
        run.log({{"who": float(me)}})
        time.sleep(0.1)
    run.finish()
"""


def test_two_processes_resume_same_run_one_wins(store_dir, tmp_path):
    run = runstore.init(entity=ENTITY, project=PROJECT, dir=store_dir, id="shared",
                        settings=CHILD_SETTINGS)
    for i in range(5):
        run.log({"orig": float(i)})
    run.finish()
    conn = sqlite3.connect(store_dir / _store.STORE_FILENAME)
    try:
        for rnd in range(2):
            go = tmp_path / f"go{rnd}"
            procs = [_spawn(_RESUME_CHILD, store_dir, go, str(me), cwd=tmp_path)
                     for me in (1, 2)]
            try:
                for proc in procs:
                    assert proc.stdout.readline().strip() == "ready"
                go.touch()
                results = [(proc.wait(timeout=60), *proc.communicate()) for proc in procs]
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            codes = sorted(code for code, _, _ in results)
            assert codes == [0, 3], f"expected one winner and one loser: {results}"
            winner = 1 + [code for code, _, _ in results].index(0)
            loser_out = results[2 - winner][1]
            assert loser_out.startswith("LOST") and "live" in loser_out, results
            won_at = int(results[winner - 1][1].split()[1])
            assert won_at == 5 + 20 * rnd

            # Only the winner's points were written, on consecutive steps after the old ones.
            rows = conn.execute(
                "SELECT step, value FROM metrics WHERE run_id = 'shared' AND key = 'who'"
                " ORDER BY step"
            ).fetchall()[20 * rnd:]
            assert rows == [(won_at + i, float(winner)) for i in range(20)]
            assert conn.execute(
                "SELECT step, value FROM metrics WHERE run_id = 'shared' AND key = 'orig'"
                " ORDER BY step"
            ).fetchall() == [(i, float(i)) for i in range(5)]
            assert conn.execute(
                "SELECT state, resume_count, pid FROM runs WHERE id = 'shared'"
            ).fetchone() == ("finished", rnd + 1, procs[winner - 1].pid)
            assert conn.execute(
                "SELECT count(*) FROM run_events WHERE relation = 'resume'"
            ).fetchone()[0] == rnd + 1
    finally:
        conn.close()
