"""Attacks on log()'s compiled common call (runstore/_fastlog.c): each test is a call or a
situation where the compiled path once did something the Python path (Run.log) does not."""

from __future__ import annotations

import json

import pytest

import runstore
from helpers import run_script


def _init(store_dir, **settings):
    return runstore.init(project="p", dir=store_dir,
                         settings={"disable_stats": True, "console": "off", **settings})


@pytest.mark.parametrize("call", [
    lambda run, row: run.log(row, stepp=None),  # a typo of step=
    lambda run, row: run.log(row, data=None),
    lambda run, row: run.log(row, None, step=None),
    lambda run, row: run.log(row, None, None, commit=None),
])
def test_a_call_run_log_refuses_is_refused_not_logged(store_dir, call):
    run = _init(store_dir)
    row = {"a": 1.0, "b": 2.0}
    run.log(row)
    run.log(row)  # the layout is known: the next such row may take the compiled path
    with pytest.raises(TypeError):
        call(run, {"a": 3.0, "b": 4.0})
    assert run.step == 2
    assert run.summary["a"] == 1.0
    run.finish()


# A row of 25 keys (a tuple that big comes from no free list: its allocation counts
# towards a garbage collection), built from new key objects each time, so the compiled
# path makes a tuple of them; a collection at every second allocation; and a gc callback
# (Python code, as a finalizer or another thread would run) that changes the row being
# logged, or finishes the run, in the middle of that log() call.
_CHANGED_IN_A_COLLECTION = """
import gc, json, sys
import runstore
run = runstore.init(project="p", dir=sys.argv[1],
                    settings={"disable_stats": True, "console": "off"})
row = lambda v: {"".join(["metric_", str(i)]): v for i in range(25)}
run.log(row(1.0))
run.log(row(1.0))
armed, fired, hold, marks = [None], [0], [], []
def change(phase, info):
    if phase == "start" and armed[0] is not None:
        data, armed[0] = armed[0], None
        fired[0] += 1
        CHANGE
gc.callbacks.append(change)
gc.set_threshold(1)
for i in range(200):
    data = row(float(i))
    hold.append([])  # two objects kept: the collection comes at the next allocation
    hold.append([])
    armed[0] = data
    try:
        run.log(data)
    except Exception as exc:
        print(type(exc).__name__, file=sys.stderr)
    armed[0] = None
gc.set_threshold(700, 10, 10)
print(json.dumps({"fired": fired[0], "step": run.step, "marks": marks,
                  "summary": {k: v for k, v in run.summary.items() if k != "metric_0"},
                  "metric_0": repr(run.summary["metric_0"])}))
run.finish()
"""


@pytest.mark.parametrize("change, check", [
    # The row grows: the compiled path wrote 1025 keys into a tuple (and a record) of 25.
    ("for k in range(1000): data[f'extra_{k}'] = 1.0",
     lambda out: out["summary"]["extra_999"] == 1.0),
    # A value becomes a string: the compiled path read a str object as a double.
    ("data['metric_0'] = 'text'", lambda out: out["metric_0"] == repr("text")),
    # finish() (another thread's, say): the compiled path wrote into the released map.
    ("run.finish(); marks.append(run.step)", lambda out: out["step"] == out["marks"][0]),
])
def test_a_row_changed_by_a_collection_inside_log_is_logged_as_changed(tmp_path, change,
                                                                      check):
    code = _CHANGED_IN_A_COLLECTION.replace("CHANGE", change)
    result = run_script(code.replace("sys.argv[1]", repr(str(tmp_path / "s"))), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["fired"] > 0, "no collection came inside log(): the test tests nothing"
    assert check(out), out


@pytest.mark.parametrize("value", [float, int, lambda i: {"nested": float(i)}],
                         ids=["compiled", "python", "python-committed"])
def test_a_notice_raised_as_an_error_moves_the_step_on_both_paths(tmp_path, value):
    # A writer's notice is forwarded by log() every NOTICE_EVERY rows; with warnings as
    # errors it raises from log() after the row is handed over. The compiled path moves
    # the step before; the Python path moved it after, so the next row took the same
    # step and replaced the row stored there.
    result = run_script(f"""
        import json, sqlite3, sys, warnings
        from pathlib import Path
        import runstore
        from runstore._ring import Ring, notices_path
        run = runstore.init(project="p", dir="s",
                            settings={{"disable_stats": True, "console": "off"}})
        value = {value.__name__ if value in (float, int) else
                 'lambda i: {"nested": float(i)}'}
        for i in range(5):
            run.log({{"a": value(i)}})
        ring = run._writer._ring_path
        with open(notices_path(ring), "a") as f:
            f.write('"a notice"\\n')
        other = Ring(Path(ring))
        other.noticed()
        other.close()
        warnings.simplefilter("error")
        raised = 0
        for i in range(5, 3000):
            try:
                run.log({{"a": value(i)}}, commit=None if i % 2 else True)
            except RuntimeWarning:
                raised += 1
        warnings.simplefilter("default")
        step = run.step
        run.finish()
        db = sqlite3.connect("s/runstore.db")
        steps = [s for (s,) in db.execute("SELECT step FROM steps ORDER BY step")]
        print(json.dumps({{"raised": raised, "step": step, "steps": steps}}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["raised"] == 1
    assert out["step"] == 3000
    assert out["steps"] == list(range(3000))


def test_a_summary_set_while_another_thread_logs_is_stored_as_run_summary_shows_it(
        store_dir):
    # run.summary["k0"] = ... in one thread, log() of k0 in another, at once: the change
    # and the row reached run.summary in one order and the writer (which replays the
    # ring) in the other, so the stored summary disagreed with run.summary for good.
    import sqlite3
    import sys
    import threading

    run = _init(store_dir)
    keys = tuple(f"k{i}" for i in range(8))
    run.log(dict.fromkeys(keys, 0.0))
    run.log(dict.fromkeys(keys, 0.0))
    db = sqlite3.connect(store_dir / "runstore.db")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    mismatches = []
    try:
        for i in range(150):
            both = threading.Barrier(2)

            def log(i=i, both=both):
                both.wait()
                run.log(dict.fromkeys(keys, float(i)))

            def assign(i=i, both=both):
                both.wait()
                run.summary["k0"] = f"set {i}"

            threads = [threading.Thread(target=log), threading.Thread(target=assign)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert run._writer.flush()
            (stored,) = db.execute("SELECT summary FROM runs").fetchone()
            if json.loads(stored)["k0"] != run.summary["k0"]:
                mismatches.append((json.loads(stored)["k0"], run.summary["k0"]))
    finally:
        sys.setswitchinterval(interval)
        db.close()
    run.finish()
    assert not mismatches, f"{len(mismatches)} of 150 differ: {mismatches[:3]}"


def test_a_fork_child_sets_the_summary_though_a_parent_thread_held_the_run_lock(tmp_path):
    # The child of a fork() gets a new run lock (_lifecycle): the one a parent's logging
    # thread held at the fork is never let go there. The summary must use the new one.
    result = run_script("""
        import os, signal, threading
        import runstore
        run = runstore.init(project="p", dir="s",
                            settings={"disable_stats": True, "console": "off"})
        run.log({"a": 1.0})
        held, done = threading.Event(), threading.Event()
        def logging_thread():  # holds the run's lock, as log() does half way
            with run._lock:
                held.set()
                done.wait()
        thread = threading.Thread(target=logging_thread)
        thread.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            signal.alarm(10)  # a child stuck on the parent's lock dies of SIGALRM
            run.summary["in_child"] = 1.0
            os._exit(0 if run.summary["in_child"] == 1.0 else 3)
        _, status = os.waitpid(pid, 0)
        done.set()
        thread.join()
        run.finish()
        print(os.waitstatus_to_exitcode(status))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0"
