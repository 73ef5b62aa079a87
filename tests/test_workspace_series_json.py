"""series.json's compact encoding (issue 13): the arrays' JSON is made once per drawn
series and kept with the store's cache; y to 7 significant digits, x and steps exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from runstore import _store
from runstore._store import _workspace
from ui_helpers import add_points, add_run, ui_get


def test_numbers_json_is_json_and_rounds_only_floats() -> None:
    enc = _workspace.numbers_json
    assert json.loads(enc([1, 2, 2**62])) == [1, 2, 2**62]
    assert json.loads(enc([1 / 3, 2.0, -1e-300, 1e300])) == [0.3333333, 2.0, -1e-300, 1e300]
    assert json.loads(enc([1 / 3], exact=True)) == [1 / 3]
    assert json.loads(enc([math.nan, 1.5, math.inf, None, 3])) == [None, 1.5, None, None, 3]
    assert json.loads(enc([])) == []


@pytest.fixture()
def store(tmp_path: Path) -> dict:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    keys = [add_run(conn, "p", f"r{i}", f"run {i}") for i in range(2)]
    for i, key in enumerate(keys):
        add_points(conn, key, "loss", [(s, (i + 1) / (3 + s)) for s in range(5000)])
        add_points(conn, key, "acc", [(s, float(s % 7)) for s in range(0, 5000, 5)])
    conn.close()
    return {"path": path, "keys": keys}


@pytest.mark.ui
def test_the_route_splices_the_encoded_arrays(store: dict) -> None:
    _workspace._CACHE.clear()
    keys = store["keys"]
    runs = ",".join(map(str, keys))
    base = f"/runstore/-/runstore/series.json?runs={runs}&metric=loss&metric=acc&points=40"
    first, again, by_time = ui_get(store["path"], base, base, base + "&x=runtime")
    assert first.status_code == 200 and first.headers["content-type"].startswith(
        "application/json")
    data, repeat, timed = first.json(), again.json(), by_time.json()
    assert data == repeat and data["keys"] == ["acc", "loss"]
    assert [(s["run_key"], s["key"]) for s in data["series"]] == [
        (keys[0], "loss"), (keys[0], "acc"), (keys[1], "loss"), (keys[1], "acc")]
    conn = _store.connect(store["path"])
    exact = _store.workspace_series(conn, keys, ["loss", "acc"], points=40)
    conn.close()
    for got, want in zip(data["series"], exact["series"], strict=True):
        assert got["x"] == want["x"] and all(type(v) is int for v in got["x"])
        assert got["y"] == [float(f"{v:.7g}") for v in want["y"]]
        assert got["total"] == want["total"] and got["downsampled"] == want["downsampled"]
        assert "steps" not in got
    for got in timed["series"]:  # x is the step's runtime here, steps beside it
        assert len(got["x"]) == len(got["y"]) == len(got["steps"])
        assert got["x"] == [1.0 * s for s in got["steps"]]


def test_the_cached_series_keeps_its_json(store: dict) -> None:
    _workspace._CACHE.clear()
    conn = _store.connect(store["path"])
    one = _store.workspace_series(conn, store["keys"], ["loss"], points=40, compact=True)
    two = _store.workspace_series(conn, store["keys"], ["loss"], points=40, compact=True)
    assert all(a["y"] is b["y"] and a["x"] is b["x"]
               for a, b in zip(one["series"], two["series"], strict=True))
    # new points change the checksum: encoded again, with the new point
    add_points(conn, store["keys"][0], "loss", [(9000, 123.0)])
    three = _store.workspace_series(conn, store["keys"], ["loss"], points=40, compact=True)
    assert three["series"][0]["y"] is not one["series"][0]["y"]
    assert 123.0 in json.loads(three["series"][0]["y"])
    assert three["series"][1]["y"] is one["series"][1]["y"]
    conn.close()
