"""Every value reads back as it was logged, and no value can lose other values."""

from __future__ import annotations

import datetime
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import runstore
from helpers import REPO, query
from runstore import _store
from runstore._values import plain_numbers

FIXTURE_V1 = REPO / "tests" / "fixtures" / "store_v1.db"


def _run(store_dir, **settings):
    return runstore.init(project="p", dir=store_dir, settings={"silent": True, **settings})


def _api_run(store_dir, run):
    return runstore.Api(store_dir).run(f"p/{run.id}")


# -- 1. values keep their kind --------------------------------------------------------------

def test_ints_bools_and_floats_read_back_as_logged(store_dir):
    run = _run(store_dir)
    run.log({"epoch": 3, "done": True, "tokens": 2**53 + 1, "whole": 2.0,
             "np_int": np.int64(2**62 + 1), "np_bool": np.bool_(False), "max": 2**63 - 1,
             "min": -(2**63), "beyond": 2**64 + 1, "u64": np.uint64(2**64 - 1)})
    run.log({"epoch": 4, "done": False, "whole": 2.5})
    run.summary["best_epoch"] = np.int64(3)
    run.finish()
    api_run = _api_run(store_dir, run)
    first, second = api_run.history()
    expected = {"epoch": 3, "done": True, "tokens": 2**53 + 1, "whole": 2.0,
                "np_int": 2**62 + 1, "np_bool": False, "max": 2**63 - 1, "min": -(2**63),
                "beyond": 2**64 + 1, "u64": 2**64 - 1}
    for key, value in expected.items():
        assert first[key] == value and type(first[key]) is type(value), (key, first[key])
    assert [(r["_step"], r["epoch"]) for r in api_run.scan_history(keys=["epoch"])] == [
        (0, 3), (1, 4)]
    assert type(next(iter(api_run.scan_history(keys=["done"])))["done"]) is bool
    assert second["done"] is False and second["whole"] == 2.5
    summary = api_run.summary
    assert summary["epoch"] == 4 and type(summary["epoch"]) is int
    assert summary["tokens"] == 2**53 + 1 and summary["done"] is False
    assert summary["best_epoch"] == 3 and type(summary["best_epoch"]) is int
    assert type(summary["whole"]) is float


def test_sql_aggregates_work_over_a_metric_mixing_ints_and_floats(store_dir):
    run = _run(store_dir)
    for value in (1, 2.5, 3, 2**53 + 1):
        run.log({"m": value})
    run.finish()
    rows = query(store_dir, "SELECT typeof(value) FROM metrics WHERE key = 'm' ORDER BY step")
    assert rows == [("integer",), ("real",), ("integer",), ("integer",)]
    (biggest, count, low), = query(
        store_dir, "SELECT max(value), count(value), min(value) FROM metrics WHERE key = 'm'")
    assert biggest == 2**53 + 1 and count == 4 and low == 1
    (mean,), = query(store_dir, "SELECT avg(value) FROM metrics WHERE key = 'm'")
    assert mean == pytest.approx((1 + 2.5 + 3 + 2**53 + 1) / 4)


def test_define_metric_aggregates_ints_as_ints_and_ignores_bools(store_dir):
    run = _run(store_dir)
    run.define_metric("acc", summary="max,mean")
    run.define_metric("flag", summary="max")
    for acc, flag in ((3, True), (7, False), (5, True)):
        run.log({"acc": acc, "flag": flag})
    assert run.summary["acc"] == {"max": 7, "mean": 5.0}
    run.finish()
    resumed = runstore.init(project="p", dir=store_dir, id=run.id, resume="must",
                            settings={"silent": True})
    assert resumed.summary["acc"]["max"] == 7 and type(resumed.summary["acc"]["max"]) is int
    assert resumed.summary["flag"] == {"max": None}  # bools are not numbers to aggregate
    resumed.finish()


def test_an_old_store_upgrades_to_untyped_values_in_place(tmp_path):
    path = tmp_path / "store" / "runstore.db"
    path.parent.mkdir()
    shutil.copy(FIXTURE_V1, path)
    before = sqlite3.connect(path)
    old = before.execute("SELECT run_key, key_id, step, value, value_json FROM history "
                         "ORDER BY 1, 2, 3").fetchall()
    before.close()
    conn = _store.connect(path)
    columns = {name: kind for _, name, kind, *_ in conn.execute("PRAGMA table_info(history)")}
    archive = {name: kind for _, name, kind, *_ in
               conn.execute("PRAGMA table_info(history_archive)")}
    assert columns["value"] == "" and archive["value"] == ""  # no affinity
    assert conn.execute("SELECT run_key, key_id, step, value, value_json FROM history "
                        "ORDER BY 1, 2, 3").fetchall() == old
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


# -- 2. no value can lose other values --------------------------------------------------------

@pytest.mark.parametrize("bad", [np.int64(3), np.float32(0.5), datetime.datetime(2026, 1, 1),
                                 object(), {"when": datetime.date(2026, 1, 1)}])
def test_any_summary_value_leaves_history_and_finish_intact(store_dir, bad):
    run = _run(store_dir)
    run.log({"loss": 1.0})
    with pytest.warns() if not isinstance(bad, np.generic) else _no_warning():
        run.summary["extra"] = bad
    for i in range(50):
        run.log({"loss": float(i)})
    run.finish()
    api_run = _api_run(store_dir, run)
    assert api_run.state == "finished"
    assert len(api_run.history()) == 51
    if isinstance(bad, np.generic):
        assert api_run.summary["extra"] == bad.item()
        assert type(api_run.summary["extra"]) is type(bad.item())
    else:
        assert "extra" not in api_run.summary


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def test_a_failed_batch_keeps_everything_but_the_offending_value(store_dir):
    # A writer thread, so that the test can compare its cache of keys with the store.
    run = _run(store_dir, writer_process=False)
    writer = run._writer
    run.log({"before": 1.0})
    run.save()
    # A value log() would never produce reaches the writer: binding it fails.
    with run._lock:
        writer.put_row(1, 0.0, 0.0, {"new_key": 2.0, "poison": object()})
        writer.put_row(2, 0.0, 0.0, {"later_key": 3.0})
    with pytest.warns(RuntimeWarning, match="'poison' at step 1"):
        run.save()
    run._step = 3
    run.log({"new_key": 4.0, "later_key": 5.0})
    run.finish()
    rows = {r["_step"]: {k: v for k, v in r.items() if not k.startswith("_")}
            for r in _api_run(store_dir, run).history()}
    assert rows == {0: {"before": 1.0}, 1: {"new_key": 2.0}, 2: {"later_key": 3.0},
                    3: {"new_key": 4.0, "later_key": 5.0}}
    # The interned ids in memory matched the store all along.
    keys = dict(query(store_dir, "SELECT key, key_id FROM metric_keys"))
    cache = writer._local._keys
    assert cache == {k: keys[k] for k in cache}


def test_a_failure_of_another_exception_type_is_salvaged_too(store_dir):
    run = _run(store_dir)
    writer = run._writer
    writer.put_file("bad.bin", "media", object())  # hashing it raises TypeError
    with run._lock:
        writer.put_row(0, 0.0, 0.0, {"kept": 1.0})
    with pytest.warns(RuntimeWarning, match="refused a files entry"):
        run.save()
    run._step = 1
    run.finish()
    assert [r["kept"] for r in _api_run(store_dir, run).history()] == [1.0]


def test_unprintable_file_names_on_stdout_lose_nothing(tmp_path, store_dir):
    code = textwrap.dedent(f"""
        import os, runstore
        run = runstore.init(project="p", id="console", dir={str(store_dir)!r})
        for i in range(20):
            print("wrote", os.fsdecode(b"weird-\\xff\\xfe.txt"), i)
            run.log({{"i": i}})
        run.finish()
    """)
    env = {**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": "utf-8:surrogateescape"}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    assert query(store_dir, "SELECT count(*) FROM history") == [(20,)]
    lines = [line for (line,) in query(store_dir, "SELECT line FROM console_lines")]
    assert len(lines) == 20 and lines[0] == "wrote weird-\\udcff\\udcfe.txt 0"
    assert query(store_dir, "SELECT state FROM runs") == [("finished",)]


def test_a_step_beyond_int64_is_refused_and_the_run_goes_on(store_dir):
    run = _run(store_dir)
    run.log({"a": 1.0})
    with pytest.warns(RuntimeWarning, match="beyond the largest step"):
        run.log({"a": 2.0}, step=2**63)
    run.log({"a": 3.0}, step=2**63 - 1, commit=True)
    with pytest.warns(RuntimeWarning, match="beyond the largest step"):
        run.log({"a": 4.0})  # the step after the largest one
    run.finish()
    api_run = _api_run(store_dir, run)
    assert api_run.state == "finished"
    assert [(r["_step"], r["a"]) for r in api_run.history()] == [(0, 1.0), (2**63 - 1, 3.0)]


class _Key(str):
    """A str subclass (as a StrEnum member is): equal to a key, yet not a plain key."""


def test_plain_numbers_checks_every_value_of_a_repeated_layout():
    # log() skips the key checks for the very key objects of the last plain row, so a
    # row with those keys must still have each value checked, and an equal key that is
    # not an exact str must still be refused.
    x, y = "x", "y"
    assert plain_numbers({x: 1.0, y: 2.0})
    assert plain_numbers({x: 1.0, y: 2})
    assert plain_numbers({x: 1.0, y: 2**63 - 1})
    for value in ("text", True, 2**63, -(2**63) - 1, np.float64(1.0), None, [1.0], {"z": 1.0}):
        assert not plain_numbers({x: 1.0, y: value}), value
    assert plain_numbers({x: 1.0, y: 3.0})
    assert not plain_numbers({x: 1.0, _Key(y): 3.0})
    assert not plain_numbers({x: 1.0, "_step": 3.0})
    assert not plain_numbers({y: 1.0, x: 3.0, 4: 1.0})
    assert not plain_numbers({})


def test_a_repeated_layout_converts_values_whose_type_changes(store_dir):
    keys = ["a", "b"]  # the same key objects at every step, as a training loop has them
    changes = [1.0, "text", True, 2**64, np.float64(0.5), 7, -(2**63) - 1, {"nested": 2.0}]
    run = _run(store_dir)
    for value in changes:
        run.log({keys[0]: 1.5, keys[1]: value})
    run.log({keys[0]: 2.5, keys[1]: 3.0})
    with pytest.warns(RuntimeWarning, match="is not a string"):
        run.log({keys[0]: 3.5, _Key(keys[1]): 4.0})
    run.finish()
    history = _api_run(store_dir, run).history()
    got = [r.get("b") for r in history]
    assert got == [1.0, "text", True, 2**64, 0.5, 7, -(2**63) - 1, None, 3.0, None]
    assert [type(v) for v in got[:7]] == [float, str, bool, int, float, int, int]
    assert history[7]["b.nested"] == 2.0 and [r["a"] for r in history][-3:] == [1.5, 2.5, 3.5]


def test_a_reused_dict_is_logged_with_its_values_at_each_call(store_dir):
    run = _run(store_dir)
    row = {"loss": 0.0, "acc": 0.0}
    for i in range(5):
        row["loss"] = i * 1.5
        row["acc"] = "warming up" if i == 3 else float(i)
        run.log(row)
    row["loss"] = "after the last call"
    assert run.summary["loss"] == 6.0
    run.finish()
    api_run = _api_run(store_dir, run)
    assert [(r["loss"], r["acc"]) for r in api_run.history()] == [
        (0.0, 0.0), (1.5, 1.0), (3.0, 2.0), (4.5, "warming up"), (6.0, 4.0)]
    assert api_run.summary["loss"] == 6.0 and api_run.summary["acc"] == 4.0


def test_self_containing_and_deep_values_are_skipped_with_a_warning(store_dir):
    run = _run(store_dir)
    loop: dict = {}
    loop["self"] = loop
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.warns(RuntimeWarning, match="nested deeper"):
        run.log({"loop": loop, "ok": 1.0})
    with pytest.warns(RuntimeWarning, match="could not be stored"):
        run.log({"deep": deep, "ok": 2.0})
    with pytest.warns(RuntimeWarning, match="nested deeper"):
        run.config.update({"loop": loop, "lr": 0.1})
    with pytest.warns(RuntimeWarning, match="nested deeper"):
        run.summary["loop"] = loop
    run.finish()
    api_run = _api_run(store_dir, run)
    assert [r["ok"] for r in api_run.history()] == [1.0, 2.0]
    assert api_run.config == {"lr": 0.1}


def test_one_huge_string_does_not_ride_along_with_later_commits(store_dir):
    huge = "x" * 20_000_000
    run = _run(store_dir, sync_writes=True)
    run.log({"text": huge})
    for i in range(200):
        run.log({"loss": float(i)})
    # The history keeps it whole; the summary carries a preview, so each of the 200
    # commits rewrote a small summary, not 20 MB.
    (summary_len,), = query(store_dir, "SELECT length(summary) FROM runs")
    assert summary_len < 2_000
    with pytest.warns(RuntimeWarning, match="summary keeps its first 200"):
        run.summary["assigned"] = huge
    run.finish()
    api_run = _api_run(store_dir, run)
    assert next(iter(api_run.scan_history(keys=["text"])))["text"] == huge
    assert api_run.summary["text"] == {"truncated": '"' + "x" * 199, "chars": 20_000_002}
    assert api_run.summary["assigned"]["chars"] == 20_000_002
    assert math.isfinite(api_run.summary["loss"])


@pytest.mark.ui
def test_the_run_page_shows_ints_with_every_digit(store_dir):
    from ui_helpers import run_url, ui_get

    run = _run(store_dir)
    run.log({"tokens": 2**53 + 1, "done": True})
    run.finish()
    (run_key,), = query(store_dir, "SELECT run_key FROM runs")
    (page,) = ui_get(store_dir / "runstore.db", run_url(run_key))
    assert page.status_code == 200
    assert "9007199254740993" in page.text and "true" in page.text
