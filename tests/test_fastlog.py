"""log()'s common call compiled (runstore/_fastlog.c, runstore/_fast.py): it is built and
used, it stores and summarises exactly what the Python path does, and it never races the
Python path, another thread, a fork or a finished run. Also the ring in memory (/dev/shm)
that makes its writes cheap, and how such rings are cleaned up."""

from __future__ import annotations

import inspect
import math
import os
import random
import subprocess
import sys
import textwrap
import threading
import warnings
import zlib
from pathlib import Path

import pytest

import runstore
from helpers import REPO, query, wait_drained
from runstore import _fast, _ring
from runstore._handoff import handoff_dir
from runstore._writer_process import recover, sweep_memory

needs_memory_dir = pytest.mark.skipif(not _ring.MEMORY_DIR.is_dir(), reason="no /dev/shm")
needs_compiled = pytest.mark.skipif(bool(os.environ.get("RUNSTORE_PURE_PYTHON")),
                                    reason="RUNSTORE_PURE_PYTHON is set")

KEYS = [f"metric_{i}" for i in range(10)]


def _init(store_dir: Path, **settings):
    return runstore.init(project="p", dir=store_dir,
                         settings={"disable_stats": True, "console": "off", **settings})


def _stored(store_dir: Path, run_id: str) -> tuple[list, list, dict]:
    """(steps, points (step, key, value, value_json), summary) of a run, as stored."""
    (run_key,) = query(store_dir, "SELECT run_key FROM runs WHERE id = ?", (run_id,))[0]
    steps = query(store_dir, "SELECT step FROM steps WHERE run_key = ? ORDER BY step",
                  (run_key,))
    points = query(store_dir, "SELECT h.step, k.key, h.value, h.value_json FROM history h"
                   " JOIN metric_keys k USING (key_id) WHERE h.run_key = ?"
                   " ORDER BY h.step, k.key", (run_key,))
    (summary,) = query(store_dir, "SELECT summary FROM runs WHERE run_key = ?", (run_key,))[0]
    import json
    return steps, points, json.loads(summary)


def _session(run) -> dict:
    """A mixed logging session: floats (the compiled path), ints, bools, NaN and inf,
    nested dicts, new keys, step= and commit=, summary writes and a summary rule."""
    seen = []
    for i in range(300):
        run.log({k: i * 0.5 + j for j, k in enumerate(KEYS)})
        if i % 50 == 7:
            run.log({"int": i, "x": 1.5})
        if i % 60 == 11:
            run.log({"nan": math.nan, "inf": -math.inf})
        if i == 100:
            run.summary["metric_3"] = "overridden"
            seen.append(dict(run.summary))
            assert seen[-1]["metric_3"] == "overridden"
        if i == 120:
            run.log({"nested": {"a": 1.0, "b": 2.0}})
            run.log({"late": 1.0}, commit=False)
            run.log({"later": 2.0})
        if i == 150:
            run.log({"metric_0": 9.0}, step=run.step + 3)
        if i == 200:
            run.define_metric("metric_1", summary="max")
        if i % 40 == 0:
            seen.append(dict(run.summary))
    seen.append(dict(run.summary))
    # repr: NaN is not equal to itself, and the two sessions' NaNs are other objects
    return {"seen": [repr(sorted(s.items())) for s in seen], "step": run.step}


def _run_session(store_dir: Path) -> tuple[dict, tuple]:
    run = _init(store_dir)
    compiled = type(run.__dict__.get("log")).__name__ == "builtin_function_or_method"
    out = _session(run)
    out["compiled"] = compiled
    run.finish()
    return out, _stored(store_dir, run.id)


@needs_compiled
def test_the_extension_is_built_and_runs_log_s_common_call(store_dir):
    # make test installs with a compiler: a silent build failure must fail here.
    assert _fast.compiled(), "runstore._fastlog was not built (see hatch_build.py)"
    run = _init(store_dir)
    assert run.log.__self__ is run._cursor
    assert list(inspect.signature(run.log).parameters) == ["data", "step", "commit"]
    run.log({"a": 1.0, "b": 2.0})  # the first row of a layout: the Python path packs it
    run.log({"a": 1.5, "b": 2.5})
    assert run._cursor.put({"a": 3.0, "b": 4.0}) is True
    assert run.step == 3
    run.finish()
    steps, points, summary = _stored(store_dir, run.id)
    assert [s for (s,) in steps] == [0, 1, 2]
    assert summary == {"a": 3.0, "b": 4.0}


@needs_compiled
def test_compiled_and_python_paths_store_and_summarise_the_same(tmp_path, monkeypatch):
    compiled, stored_compiled = _run_session(tmp_path / "compiled")
    monkeypatch.setenv("RUNSTORE_PURE_PYTHON", "1")
    plain, stored_plain = _run_session(tmp_path / "plain")
    assert compiled.pop("compiled") and not plain.pop("compiled")
    assert compiled == plain
    assert repr(stored_compiled) == repr(stored_plain)
    steps, points, summary = stored_compiled
    assert summary["metric_3"] == 299 * 0.5 + 3  # logged again after the override
    assert summary["metric_1"] == {"max": 299 * 0.5 + 1}


def test_the_summary_folds_the_newest_values_before_any_read_or_write(store_dir):
    run = _init(store_dir)
    for i in range(5):
        run.log({"a": float(i), "b": -float(i)})
    assert run.summary["a"] == 4.0 and run.summary.b == -4.0
    run.log({"a": 10.0, "b": 11.0})
    run.summary["a"] = "mine"  # a write after a compiled row wins over it...
    assert run.summary["a"] == "mine"
    run.log({"a": 12.0, "b": 13.0})  # ...until the key is logged again
    run.log({"c": 1.0})
    run.log({"c": 2.0})
    run.log({"a": 14.0, "b": 15.0})  # two layouts in turn: both folded, in order
    assert dict(run.summary) == {"a": 14.0, "b": 15.0, "c": 2.0}
    assert "c" in run.summary and len(run.summary) == 3
    run.finish()
    assert dict(run.summary) == {"a": 14.0, "b": 15.0, "c": 2.0}
    assert _stored(store_dir, run.id)[2] == {"a": 14.0, "b": 15.0, "c": 2.0}


def test_threads_logging_at_once_get_one_step_each(store_dir):
    run = _init(store_dir)
    per_thread, threads = 3000, 4

    def work(n: int) -> None:
        keys = [f"t{n}_{i}" for i in range(5)] if n % 2 else KEYS
        for i in range(per_thread):
            run.log({k: float(i) for k in keys})
            if i % 500 == 0:
                run.summary["seen"] = i  # the summary's own lock-free path, meanwhile

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    run.finish()
    steps, points, _ = _stored(store_dir, run.id)
    assert [s for (s,) in steps] == list(range(per_thread * threads))
    assert len(points) == per_thread * (2 * 10 + 2 * 5)


@pytest.mark.parametrize("host", ["process", "thread"])
def test_a_full_ring_waits_and_keeps_every_row(store_dir, monkeypatch, host):
    # The smallest ring: the compiled put() finds no room again and again, and the Python
    # path waits for the writer (and wraps the ring).
    monkeypatch.setattr("runstore._handoff.DEFAULT_CAPACITY", _ring.MIN_CAPACITY)
    run = _init(store_dir, writer_process=host == "process")
    for i in range(20000):
        run.log({k: float(i) for k in KEYS})
    run.finish()
    steps, points, summary = _stored(store_dir, run.id)
    assert len(steps) == 20000 and len(points) == 200000
    assert summary["metric_0"] == 19999.0


def test_call_shapes_reach_the_python_path_where_they_must(store_dir):
    run = _init(store_dir)
    run.log({"a": 1.0})
    run.log({"a": 2.0}, None, None)  # positional Nones: the common call
    run.log({"a": 3.0}, step=None, commit=None)
    run.log({"a": 4.0}, 10)  # a step: the Python path, pending (wandb's rules)...
    run.log({"a": 5.0}, commit=False)  # ...merged...
    run.log({"b": 6.0})  # ...and committed by the next common call
    run.log({"a": 7})  # an int stays an int
    with pytest.raises(TypeError):
        run.log({"a": 1.0}, bogus=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log([("a", 1.0)])  # not a dict
    assert any("log() takes a dict" in str(w.message) for w in caught)
    run.finish()
    with pytest.raises(runstore.UsageError):
        run.log({"a": 8.0})
    _, points, summary = _stored(store_dir, run.id)
    assert [(s, k, v) for s, k, v, _ in points] == [
        (0, "a", 1.0), (1, "a", 2.0), (2, "a", 3.0), (10, "a", 5.0), (10, "b", 6.0),
        (11, "a", 7)]
    assert type(summary["a"]) is int


def test_with_runstore_pure_python_set_log_is_the_python_method(store_dir, monkeypatch):
    monkeypatch.setenv("RUNSTORE_PURE_PYTHON", "1")
    run = _init(store_dir)
    assert "log" not in run.__dict__ and run.log.__func__ is runstore.Run.log
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    run.finish()
    assert _stored(store_dir, run.id)[2] == {"a": 2.0}


def test_sync_writes_and_step_sync_keep_the_python_path(store_dir):
    run = _init(store_dir, sync_writes=True)
    assert "log" not in run.__dict__
    run.finish()
    run = _init(store_dir)
    run.log({"epoch": 1.0, "a": 1.0})
    run.define_metric("val/*", step_metric="epoch")
    run.log({"epoch": 2.0, "a": 2.0})
    run.log({"val/loss": 0.5})  # gets epoch filled in by step_sync
    run.finish()
    _, points, _ = _stored(store_dir, run.id)
    assert (2, "epoch", 2.0, None) in points and (2, "val/loss", 0.5, None) in points


@needs_compiled
def test_the_c_crc_is_zlib_s():
    from runstore import _fastlog

    rng = random.Random(0)
    for n in (0, 1, 7, 8, 63, 64, 112, 1000):
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert _fastlog.crc32(data) == zlib.crc32(data)


def test_a_forked_child_s_compiled_log_never_reaches_the_parent_s_ring(store_dir):
    run = _init(store_dir)
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    pid = os.fork()
    if pid == 0:  # the child: every row must be dropped, by either path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for i in range(100):
                    run.log({"a": 100.0 + i})
            os._exit(0 if run._cursor.open is False else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    run.log({"a": 3.0})
    run.finish()
    _, points, summary = _stored(store_dir, run.id)
    assert [v for _, _, v, _ in points] == [1.0, 2.0, 3.0]


@needs_memory_dir
def test_the_ring_is_in_memory_linked_from_the_store_and_removed_at_finish(store_dir):
    run = _init(store_dir)
    (link,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    target = Path(os.readlink(link))
    assert link.is_symlink() and target.parent == _ring.MEMORY_DIR and target.exists()
    run.log({"a": 1.0})
    run.finish()
    assert not link.exists() and not target.exists()


def test_runstore_ring_on_disk_keeps_the_ring_in_the_store_s_folder(store_dir, monkeypatch):
    monkeypatch.setenv("RUNSTORE_RING_ON_DISK", "1")
    run = _init(store_dir)
    (ring,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    assert not ring.is_symlink() and ring.stat().st_size > _ring.HEADER
    for i in range(3):
        run.log({"a": float(i)})
    run.finish()
    assert _stored(store_dir, run.id)[2] == {"a": 2.0}


_KILLED_THREAD_HOST = """
import os, signal, sys
import runstore
run = runstore.init(project="p", dir=sys.argv[1],
                    settings={"writer_process": False, "disable_stats": True, "console": "off"})
for i in range(2000):
    run.log({"a": float(i), "b": 1.0})
print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_trainer(tmp_path: Path, store_dir: Path) -> tuple[str, Path, Path]:
    """A trainer with a writer thread, SIGKILLed: (its run id, its ring's link, the file)."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_KILLED_THREAD_HOST))
    child = subprocess.run([sys.executable, str(script), str(store_dir)], capture_output=True,
                           text=True, timeout=120, cwd=REPO)
    (link,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    return child.stdout.strip(), link, Path(os.readlink(link))


@needs_memory_dir
def test_a_killed_trainer_s_memory_ring_is_replayed_then_removed(tmp_path, store_dir):
    run_id, link, target = _killed_trainer(tmp_path, store_dir)
    assert target.exists()
    assert sweep_memory() == 0 or target.exists(), "a ring its store links to was swept"
    assert recover(store_dir / "runstore.db") == 1
    assert not link.exists() and not target.exists()
    steps, points, summary = _stored(store_dir, run_id)
    assert len(steps) == 2000 and summary == {"a": 1999.0, "b": 1.0}


@needs_memory_dir
def test_memory_rings_nobody_can_reach_are_swept(tmp_path, store_dir):
    _, link, target = _killed_trainer(tmp_path, store_dir)
    link.unlink()  # the store's folder deleted: nobody will replay this ring
    assert sweep_memory() >= 1
    assert not target.exists()
    # A live run's ring is never swept.
    run = _init(store_dir)
    (live,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    sweep_memory()
    assert Path(os.readlink(live)).exists()
    run.finish()
    assert wait_drained(store_dir)


@pytest.fixture
def memory(tmp_path, monkeypatch) -> Path:
    """Ring files "in memory" go to a folder of this test's own."""
    folder = tmp_path / "shm"
    folder.mkdir()
    monkeypatch.setattr(_ring, "MEMORY_DIR", folder)
    return folder


def test_init_makes_the_memory_ring_meanwhile_and_leaves_none_when_it_fails(
        store_dir, memory):
    run = _init(store_dir)
    (link,) = handoff_dir(store_dir / "runstore.db").glob("*.ring")
    assert [Path(os.readlink(link))] == list(memory.iterdir())
    run.finish()
    assert list(memory.iterdir()) == []
    with pytest.raises(runstore.Error):  # fails in _open, after the file was being made
        runstore.init(project="p", dir=store_dir, id="nope", resume="must")
    assert list(memory.iterdir()) == []


def test_links_and_files_of_another_host_or_still_being_made_are_left_alone(
        store_dir, memory):
    run = _init(store_dir)
    run.finish()
    folder = handoff_dir(store_dir / "runstore.db")
    prefix = f"runstore-{os.getuid()}-"
    ours = folder / "1.1.ring"
    ours.symlink_to(memory / f"{prefix}{_ring._HOST}-gone.ring")  # this host rebooted
    theirs = folder / "2.2.ring"
    theirs.symlink_to(memory / f"{prefix}0badc0de-live.ring")  # in another host's memory
    recover(store_dir / "runstore.db")
    assert not ours.is_symlink() and theirs.is_symlink()
    # A memory file with no ring header yet: being made by an init(), or never taken.
    young = memory / f"{prefix}{_ring._HOST}-young.ring"
    old = memory / f"{prefix}{_ring._HOST}-old.ring"
    for path in (young, old):
        path.write_bytes(bytes(_ring.HEADER))
    os.utime(old, (0, 0))
    sweep_memory()
    assert young.exists() and not old.exists()
