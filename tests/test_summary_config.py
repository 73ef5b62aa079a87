"""run.summary, define_metric and run.config rules, persisted to the store."""

from __future__ import annotations

import argparse
import json

import pytest

import runstore
from helpers import query


def stored(store_dir, column):
    (value,) = query(store_dir, f"SELECT {column} FROM runs")[0]
    return json.loads(value)


def test_summary_defaults_to_last_value(new_run, store_dir):
    run = new_run()
    for v in (3, 1, 2):
        run.log({"loss": v, "note": f"v{v}"})
    assert run.summary["loss"] == 2.0 and run.summary.note == "v2"
    run.finish()
    assert stored(store_dir, "summary") == {"loss": 2.0, "note": "v2"}
    assert query(store_dir, "SELECT json_extract(summary, '$.loss') FROM runs") == [(2.0,)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("min", {"min": 1.0}),
        ("max", {"max": 3.0}),
        ("mean", {"mean": 2.0}),
        ("first", {"first": 3.0}),
        ("last", {"last": 2.0}),
        ("min,max,mean", {"min": 1.0, "max": 3.0, "mean": 2.0}),
    ],
)
def test_define_metric_summary(new_run, store_dir, spec, expected):
    run = new_run()
    run.define_metric("loss", summary=spec)
    for v in (3, 1, 2):
        run.log({"loss": v})
    run.finish()
    assert stored(store_dir, "summary")["loss"] == expected


def test_define_metric_none_and_glob(new_run, store_dir):
    run = new_run()
    run.define_metric("val/*", summary="max")
    run.define_metric("noise", summary="none")
    for v in (1, 5, 2):
        run.log({"val/acc": v, "val/f1": -v, "noise": v, "train/loss": v})
    run.finish()
    summary = stored(store_dir, "summary")
    assert summary["val/acc"] == {"max": 5.0} and summary["val/f1"] == {"max": -1.0}
    assert "noise" not in summary and summary["train/loss"] == 2.0
    assert [d["name"] for d in stored(store_dir, "metric_definitions")] == ["val/*", "noise"]


def test_define_metric_bad_arguments(new_run):
    run = new_run()
    with pytest.raises(runstore.UsageError, match="median"):
        run.define_metric("loss", summary="median")
    with pytest.raises(runstore.UsageError, match="only allowed at the end"):
        run.define_metric("a*b", summary="min")


def test_summary_assignment_overrides_and_persists(new_run, store_dir):
    run = new_run()
    run.define_metric("acc", summary="max")
    run.log({"acc": 0.5, "loss": 1})
    run.summary["acc"] = 0.99
    run.summary.update({"best_epoch": 3})
    run.summary.custom = "x"
    assert run.summary["acc"] == 0.99
    run.finish()
    assert stored(store_dir, "summary") == {"acc": 0.99, "loss": 1.0, "best_epoch": 3,
                                            "custom": "x"}


def test_nan_in_summary_is_stored_as_valid_json(new_run, store_dir):
    run = new_run()
    run.log({"loss": float("nan"), "big": float("inf")})
    run.finish()
    assert query(store_dir, "SELECT json_valid(summary) FROM runs") == [(1,)]
    api_run = runstore.Api(store_dir).run(f"proj/{run.id}")
    assert api_run.summary["loss"] != api_run.summary["loss"]  # NaN round-trips
    assert api_run.summary["big"] == float("inf")


def test_config_dict_attribute_access_and_update(new_run, store_dir):
    run = new_run(config={"lr": 0.1, "opt": {"name": "adam"}})
    assert run.config.lr == 0.1 and run.config["opt"]["name"] == "adam"
    run.config.update({"batch": 32})
    run.config.epochs = 5
    run.config["layers"] = [1, 2]
    assert stored(store_dir, "config") == {"lr": 0.1, "opt": {"name": "adam"}, "batch": 32,
                                           "epochs": 5, "layers": [1, 2]}
    assert ("opt.name", "adam") in query(store_dir, "SELECT key, value FROM config_values")
    assert query(store_dir, "SELECT id FROM runs WHERE json_extract(config, '$.lr') = 0.1") == [
        (run.id,)]


def test_config_changes_need_allow_val_change(new_run, store_dir):
    run = new_run(config={"lr": 0.1})
    run.config.lr = 0.1  # same value is fine
    with pytest.raises(runstore.UsageError, match="allow_val_change"):
        run.config.lr = 0.2
    with pytest.raises(runstore.UsageError, match="allow_val_change"):
        run.config.update({"lr": 0.3})
    run.config.update({"lr": 0.4}, allow_val_change=True)
    assert stored(store_dir, "config") == {"lr": 0.4}


def test_allow_val_change_at_init(new_run, store_dir):
    run = new_run(config={"lr": 0.1}, allow_val_change=True)
    run.config.lr = 0.5
    assert stored(store_dir, "config") == {"lr": 0.5}


def test_config_key_rules(new_run, store_dir):
    run = new_run()
    with pytest.raises(runstore.UsageError, match="contains '.'"):
        run.config.update({"a.b": 1})
    with pytest.raises(runstore.UsageError, match="must be strings"):
        run.config.update({1: 1})
    with pytest.raises(runstore.UsageError, match="10 MB"):
        run.config.update({"huge": "x" * (11 * 1024 * 1024)})
    run.config.update({"--lr": 1})
    assert run.config.lr == 1
    assert stored(store_dir, "config") == {"lr": 1}
    run.finish()
    with pytest.raises(runstore.UsageError, match="contains '.'"):
        new_run(config={"x.y": 1}, id="other")
    assert query(store_dir, "SELECT count(*) FROM runs") == [(1,)]  # nothing half-created


def test_config_from_namespace_and_include_exclude(new_run, store_dir):
    args = argparse.Namespace(lr=0.1, epochs=3, secret="x")
    run = new_run(config=args, config_exclude_keys=["secret"])
    assert dict(run.config.items()) == {"lr": 0.1, "epochs": 3}
    run.finish()
    run2 = new_run(config={"a": 1, "b": 2}, config_include_keys=["a"], id="two")
    assert dict(run2.config.items()) == {"a": 1}
    run2.finish()
    with pytest.raises(runstore.UsageError, match="not both"):
        new_run(config={"a": 1}, config_include_keys=["a"], config_exclude_keys=["b"])
