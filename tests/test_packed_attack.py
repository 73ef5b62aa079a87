"""Packed rows of floats (log() of a dict of floats alone) against what a careless or
hostile user does to the store while a run logs: the layouts' side file must never
let a row be read with another layout's keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping

import pytest

import runstore
from runstore._handoff import handoff_dir
from runstore._ring import PACKED, Ring


def _steps(store_dir, run_id: str) -> dict[int, dict[str, float]]:
    rows = runstore.Api(store_dir).run(f"p/{run_id}").history()
    return {r["_step"]: {k: v for k, v in r.items() if not k.startswith("_")} for r in rows}


@pytest.mark.parametrize("writer_process", [False, True])
@pytest.mark.parametrize("how", ["emptied", "removed and made again"])
def test_handoff_folder_emptied_under_the_run_keeps_every_row_under_its_keys(
        store_dir, writer_process, how):
    # The ring itself lives on in its map when its file is deleted; a new layout's keys
    # written to a side file made anew at the old name were numbered from 0 there, so
    # the writer read "loss" rows as "val_loss" ones and lost the "val_loss" rows.
    run = runstore.init(project="p", dir=store_dir,
                        settings={"writer_process": writer_process})
    for i in range(3):
        run.log({"loss": 1.0 + i, "acc": 0.5 + i})
    assert run._writer.flush(timeout=30)  # the writer has read the first layout
    folder = handoff_dir(store_dir / "runstore.db")
    if how == "emptied":
        for path in folder.iterdir():
            path.unlink()
    else:
        shutil.rmtree(folder)
        runstore.init(project="other", dir=store_dir, reinit="create_new").finish()
    for i in range(3):
        run.log({"val_loss": 10.0 + i, "val_acc": 20.0 + i})
        run.log({"loss": 100.0 + i, "acc": 200.0 + i})
    run.finish()
    expected = {i: {"loss": 1.0 + i, "acc": 0.5 + i} for i in range(3)}
    for i in range(3):
        expected[3 + 2 * i] = {"val_loss": 10.0 + i, "val_acc": 20.0 + i}
        expected[4 + 2 * i] = {"loss": 100.0 + i, "acc": 200.0 + i}
    assert _steps(store_dir, run.id) == expected


def test_a_row_changed_by_another_thread_while_log_waits_is_stored_as_it_was_handed(
        store_dir):
    # log() checks a row of floats, then waits for the run's lock: a key swapped for
    # another and a float made an int meanwhile were packed under the checked keys, as
    # floats ({"a": 7.0, "b": 3.0}, values the row never had under those keys). The
    # row is stored as log() was given it.
    run = runstore.init(project="p", dir=store_dir, settings={"writer_process": False})
    row = {"a": 1.0, "b": 2.0}
    run.log(row)
    with run._lock:
        logger = threading.Thread(target=run.log, args=(row,))
        logger.start()
        time.sleep(0.3)  # it has checked the row and waits for the lock
        del row["a"]
        row["z"] = 3.0
        row["b"] = 7
    logger.join()
    run.finish()
    stored = _steps(store_dir, run.id)
    assert stored == {0: {"a": 1.0, "b": 2.0}, 1: {"a": 1.0, "b": 2.0}}  # as given
    assert type(stored[1]["b"]) is float


class _Meddling(Mapping):
    """A nested value whose reading adds a key to the dict that holds it."""

    def __init__(self, outer: dict) -> None:
        self._outer = outer

    def __getitem__(self, key: str) -> float:
        return 1.0

    def __iter__(self) -> Iterator[str]:
        self._outer[f"late{len(self._outer)}"] = 2.0
        return iter(["x"])

    def __len__(self) -> int:
        return 1


def test_log_of_a_dict_that_changes_while_it_is_read_does_not_raise(store_dir):
    # flatten() iterated the caller's dict, which the nested value changed: a
    # RuntimeError out of log(). log() reads its own copy, as the dict was given.
    run = runstore.init(project="p", dir=store_dir, settings={"writer_process": False})
    row: dict = {"a": 1.0}
    row["nested"] = _Meddling(row)
    row["b"] = 2.0
    run.log(row)
    run.log({"a": 3.0})
    run.finish()
    assert _steps(store_dir, run.id) == {0: {"a": 1.0, "nested.x": 1.0, "b": 2.0},
                                         1: {"a": 3.0}}


def _killed_child(store_dir, run_id: str, row: str) -> None:
    """A child that logs 100 rows (`row`, an expression of i) with the writer in a
    thread, then is SIGKILLed: its rows are left in its ring for the next init()."""
    code = textwrap.dedent(f"""
        import os, signal, runstore
        run = runstore.init(project="p", id={run_id!r}, dir={str(store_dir)!r},
                            settings={{"writer_process": False}})
        for i in range(100):
            run.log({row})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_a_ring_with_packed_rows_is_refused_by_a_runstore_that_cannot_read_them(store_dir):
    # runstore before packed rows opened any RSRING02 ring: its recover() drained one
    # of this version into nothing (every packed row unreadable) and removed it.
    _killed_child(store_dir, "floats", '{"loss": i / 3}')
    (ring,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    assert ring.read_bytes()[:8] != b"RSRING02"
    runstore.init(project="p", id="next", dir=store_dir).finish()  # replays it
    assert [r["loss"] for r in runstore.Api(store_dir).run("p/floats").history()] == \
        [i / 3 for i in range(100)]


def test_a_ring_left_by_a_runstore_before_packed_rows_is_still_replayed(store_dir):
    _killed_child(store_dir, "old", '{"i": i}')
    (ring,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    with open(ring, "r+b") as f:  # as runstore before packed rows made it
        f.write(b"RSRING02")
    runstore.init(project="p", id="next", dir=store_dir).finish()
    assert [r["i"] for r in runstore.Api(store_dir).run("p/old").history()] == \
        list(range(100))


def test_reading_a_new_layout_reads_only_what_is_new_in_the_side_file(tmp_path):
    # A run that logs a new key every step has a new layout every step: the writer
    # read and unpickled the whole side file again for each (quadratic: 49 s for 1,000
    # rows of 300 keys, against 0.2 s).
    producer = Ring(tmp_path / "x.ring", create=True, capacity=64 << 20)
    consumer = Ring(tmp_path / "x.ring")
    keys = tuple(f"metric/{j:05d}_of_a_model" for j in range(300))
    took = 0.0
    for i in range(1000):
        number, pack = producer.add_layout((*keys, f"new{i}"))
        producer.put(pack(PACKED, number, i, 0.0, 0.0, *([0.5] * 301)), lambda _: None)
        start = time.perf_counter()
        items, tail, _ = consumer.read(1 << 30, lambda _: 1)
        took += time.perf_counter() - start
        consumer.commit(tail)
        assert [item.values[item.keys.index(f"new{i}")] for item in items] == [0.5]
    producer.close()
    consumer.close()
    assert took < 10


def test_a_fork_while_another_thread_logs_gives_a_child_that_can_log(store_dir):
    # The child inherited the run's and the hand-off's locks as held by the logging
    # thread, which the child does not have: its first log() waited for ever (37 of 40).
    run = runstore.init(project="p", dir=store_dir,
                        settings={"writer_process": False, "log_queue_size": 16})
    stop = threading.Event()

    def keep_logging() -> None:
        i = 0
        while not stop.is_set():
            run.log({"spam": float(i), "big": 1.0})
            i += 1

    logger = threading.Thread(target=keep_logging)
    logger.start()
    hung = 0
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:  # the child: log, then leave at once
                try:
                    run.log({"child": 1.0})
                    run.log({"spam": 2.0, "big": 3.0})
                finally:
                    os._exit(0)
            deadline = time.monotonic() + 10
            while not os.waitpid(pid, os.WNOHANG)[0]:
                if time.monotonic() > deadline:
                    hung += 1
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.01)
    finally:
        stop.set()
        logger.join()
    run.finish()
    assert hung == 0
    assert all("child" not in row for row in runstore.Api(store_dir).run(
        f"p/{run.id}").history())


def test_a_layout_cut_short_by_a_file_size_limit_costs_no_row(store_dir):
    # A write of the layouts' side file that came out short (here RLIMIT_FSIZE; a disk
    # filling up too) was not noticed: the layout was numbered anyway, and every entry
    # after the cut one was read from the wrong bytes (67 of 90 rows right).
    code = textwrap.dedent(f"""
        import resource, signal, runstore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = runstore.init(project="p", id="limited", dir={str(store_dir)!r},
                            settings={{"writer_process": False}})
        keys = [f"k{{j:04d}}" + "x" * 95 for j in range(1999)]
        resource.setrlimit(resource.RLIMIT_FSIZE, (9 << 20, resource.RLIM_INFINITY))
        for i in range(60):
            row = dict.fromkeys(keys, float(i))
            row[f"new{{i}}"] = float(i)
            for _ in range(1 + i % 2):
                run.log(row)
        run.finish()
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = runstore.Api(store_dir).run("p/limited").history()
    expected = []
    for i in range(60):
        row = dict.fromkeys((f"k{j:04d}" + "x" * 95 for j in range(1999)), float(i))
        row[f"new{i}"] = float(i)
        expected += [row] * (1 + i % 2)
    assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows] == expected
