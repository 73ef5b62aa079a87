"""log(): wandb's step rules, flattening and value types, read back from the store."""

from __future__ import annotations

import math

import numpy as np
import pytest

import runstore
from helpers import query


def history(run_dir, run, keys=None):
    return runstore.Api(run_dir).run(f"{run.project}/{run.id}").history(keys=keys)


def test_steps_auto_increment_from_zero(new_run, store_dir):
    run = new_run()
    for i in range(3):
        run.log({"loss": float(i)})
    assert run.step == 3
    run.finish()
    assert [(r["_step"], r["loss"]) for r in history(store_dir, run)] == [
        (0, 0.0), (1, 1.0), (2, 2.0)]


def test_commit_false_accumulates_into_the_current_step(new_run, store_dir):
    run = new_run()
    run.log({"a": 1}, commit=False)
    run.log({"b": 2}, commit=False)
    assert run.step == 0
    run.log({"c": 3})
    run.log({"a": 4})
    run.finish()
    rows = history(store_dir, run)
    assert [{k: v for k, v in r.items() if not k.startswith("_r") and k != "_timestamp"}
            for r in rows] == [{"_step": 0, "a": 1.0, "b": 2.0, "c": 3.0}, {"_step": 1, "a": 4.0}]


def test_explicit_step_stays_open_until_a_later_step(new_run, store_dir):
    run = new_run()
    run.log({"a": 1}, step=5)
    run.log({"b": 2}, step=5)  # same step merges
    run.log({"c": 3})  # no step: merges into 5, then commits and advances
    assert run.step == 6
    run.log({"d": 4}, step=9)  # jumps
    run.log({"e": 5}, step=12)  # commits 9, jumps
    run.finish()  # commits the pending 12
    steps = {r["_step"]: {k for k in r if not k.startswith("_")} for r in history(store_dir, run)}
    assert steps == {5: {"a", "b", "c"}, 9: {"d"}, 12: {"e"}}


def test_lower_step_is_warned_about_and_dropped(new_run, store_dir):
    run = new_run()
    run.log({"a": 1}, step=3)
    run.log({"a": 2}, step=4)
    with pytest.warns(RuntimeWarning, match="less than the current step 4"):
        run.log({"a": 99}, step=1)
    run.finish()
    assert [(r["_step"], r["a"]) for r in history(store_dir, run)] == [(3, 1.0), (4, 2.0)]


def test_step_with_commit_true_writes_at_once(new_run, store_dir):
    run = new_run()
    run.log({"a": 1}, step=2, commit=True)
    assert run.step == 3
    run.log({"a": 2})
    run.finish()
    assert [r["_step"] for r in history(store_dir, run)] == [2, 3]


def test_bad_step_is_a_warning_not_an_exception(new_run, store_dir):
    run = new_run()
    with pytest.warns(RuntimeWarning, match="non-negative integer"):
        run.log({"a": 1}, step=-1)
    with pytest.warns(RuntimeWarning, match="non-negative integer"):
        run.log({"a": 1}, step="x")
    run.log({"a": 2}, step=np.int64(0))
    run.finish()
    assert [(r["_step"], r["a"]) for r in history(store_dir, run)] == [(0, 2.0)]


def test_log_after_finish_raises_usage_error(new_run):
    run = new_run()
    run.finish()
    with pytest.raises(runstore.UsageError, match="finished"):
        run.log({"a": 1})


def test_module_log_before_init_raises_error():
    assert runstore.run is None
    with pytest.raises(runstore.Error, match="runstore.init()"):
        runstore.log({"a": 1})
    with pytest.raises(runstore.Error, match="runstore.init()"):
        runstore.config.lr  # noqa: B018


def test_nested_dicts_flatten_to_dotted_keys_and_slash_is_kept(new_run, store_dir):
    run = new_run()
    run.log({"a": {"b": 1, "c": {"d": 2}}, "train/loss": 0.5})
    run.finish()
    (row,) = history(store_dir, run)
    assert row["a.b"] == 1.0 and row["a.c.d"] == 2.0 and row["train/loss"] == 0.5
    keys = {k for (k,) in query(store_dir, "SELECT key FROM metric_keys")}
    assert keys == {"a.b", "a.c.d", "train/loss"}


def test_value_types_are_stored_as_numbers_or_json(new_run, store_dir):
    run = new_run()
    run.log({
        "int": 3, "float": 0.25, "bool": True, "np_f32": np.float32(1.5), "np_i64": np.int64(7),
        "np_0d": np.array(2.5), "nan": float("nan"), "inf": float("inf"), "ninf": -math.inf,
        "text": "hello", "small_list": [1, 2, 3], "none": None, "np_vec": np.arange(3),
    })
    run.finish()
    (row,) = history(store_dir, run)
    kinds = {key: type(value) for key, value in row.items()}
    assert row["int"] == 3 and kinds["int"] is int
    assert row["float"] == 0.25 and row["bool"] is True
    assert row["np_f32"] == 1.5 and kinds["np_f32"] is float
    assert row["np_i64"] == 7 and kinds["np_i64"] is int
    assert row["np_0d"] == 2.5
    assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["text"] == "hello" and row["small_list"] == [1, 2, 3] and row["none"] is None
    assert row["np_vec"] == [0, 1, 2]
    numeric = dict(query(store_dir, "SELECT key, typeof(value) FROM metrics"))
    assert numeric["int"] == "integer" and numeric["np_i64"] == "integer"
    assert numeric["np_f32"] == "real" and numeric["inf"] == "real"
    assert numeric["bool"] == "integer"  # 0/1, so avg() over a bool metric is its rate
    assert numeric["text"] == "null" and numeric["nan"] == "null"
    # SQL aggregates just work on the numeric column.
    assert query(store_dir, "SELECT sum(value) FROM metrics WHERE key IN ('int', 'float')") == [
        (3.25,)]


def test_unstorable_values_are_skipped_with_a_warning(new_run, store_dir):
    run = new_run()
    with pytest.warns(RuntimeWarning, match="cannot be logged"):
        run.log({"ok": 1, "bad": object()})
    with pytest.warns(RuntimeWarning, match="not a string"):
        run.log({1: 2, "ok": 2})
    with pytest.warns(RuntimeWarning, match="takes a dict"):
        run.log([1, 2])
    run.finish()
    assert [r["ok"] for r in history(store_dir, run)] == [1.0, 2.0]
    assert "bad" not in history(store_dir, run)[0]


def test_step_rows_carry_runtime_and_timestamp_once(new_run, store_dir):
    run = new_run()
    for i in range(5):
        run.log({"a": i, "b": i})
    run.finish()
    assert query(store_dir, "SELECT count(*) FROM steps") == [(5,)]
    assert query(store_dir, "SELECT count(*) FROM history") == [(10,)]
    rows = history(store_dir, run)
    assert all(r["_timestamp"] > 1e9 and r["_runtime"] >= 0 for r in rows)
    assert [r["_runtime"] for r in rows] == sorted(r["_runtime"] for r in rows)


def test_sync_writes_setting_commits_before_log_returns(new_run, store_dir):
    run = new_run(settings={"sync_writes": True})
    run.log({"a": 1})
    assert query(store_dir, "SELECT count(*) FROM history") == [(1,)]


def test_bounded_queue_keeps_every_point(new_run, store_dir):
    run = new_run(settings=runstore.Settings(log_queue_size=16))
    for i in range(3000):
        run.log({"a": i})
    run.finish()
    assert query(store_dir, "SELECT count(*), min(step), max(step), sum(value) FROM history") == [
        (3000, 0, 2999, float(sum(range(3000))))]
