"""Compare page, run picking, canned queries and chart data from history_blocks."""

from __future__ import annotations

import math
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

import runstore
from runstore import _store
from runstore._store import _chart
from ui_helpers import ui_get

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

EVIL = "<script>alert(1)</script>"
MILLION = 1_000_000
SPIKE = 654_321
HUNDRED_K = 100_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs logged through the public API: three in project p with differing config,
    one in project q, a failed one, a crashed one and a fork."""
    root = tmp_path_factory.mktemp("compare")
    store = root / "store"
    mp = pytest.MonkeyPatch()
    mp.setenv("RUNSTORE_SILENT", "true")
    mp.chdir(root)
    try:
        a = runstore.init(project="p", id="run-a", name="alpha", dir=store,
                          config={"lr": 0.1, "batch": 64, "opt": {"name": "adam"}})
        a.define_metric("val/acc", summary="max")
        a.define_metric("train/loss", summary="min", goal="minimize")
        for i, (loss, acc) in enumerate([(1.0, 0.5), (0.4, 0.93), (0.6, 0.7)]):
            a.log({"train/loss": loss, "val/acc": acc}, step=i)
        a.finish()
        b = runstore.init(project="p", id="run-b", name="beta", dir=store,
                          config={"lr": 0.01, "batch": 64, "opt": {"name": "sgd"}, "extra": 1})
        for i in range(3):
            b.log({"train/loss": 0.9 - i / 10, "val/acc": 0.91, "grad": float(i)}, step=i)
        b.finish()
        c = runstore.init(project="p", id="run-c", name=EVIL, dir=store,
                          config={"lr": 0.1, "batch": 64, "opt": {"name": "adam"}})
        c.log({"train/loss": 2.0})
        c.finish()
        q = runstore.init(project="q", id="run-q", name="quiet", dir=store,
                          config={"lr": 0.5})
        q.log({"val/acc": 0.5})
        q.finish()
        bad = runstore.init(project="p", id="run-bad", name="broken", dir=store)
        bad.log({"train/loss": 9.0})
        bad.finish(exit_code=1)
        runstore.init(project="p", id="kid", name="kid", dir=store,
                      fork_from="run-a?_step=1").finish()
    finally:
        mp.undo()
    path = store / "runstore.db"
    conn = _store.connect(path)
    _store.insert_run(conn, {"entity": "me", "project": "p", "id": "run-dead", "name": "dead",
                             "state": "crashed", "created_at": "2024-05-01T12:00:00+00:00"})
    keys = dict(conn.execute("SELECT id, run_key FROM runs").fetchall())
    conn.close()
    return {"path": path, "keys": keys}


def _compare(runs: dict[str, Any], *ids: str) -> str:
    return "/runstore/-/runstore/compare?runs=" + ",".join(str(runs["keys"][i]) for i in ids)


def test_compare_page_overlays_metrics_and_lists_differing_config(runs: dict[str, Any]) -> None:
    (response,) = ui_get(runs["path"], _compare(runs, "run-a", "run-b", "run-c"))
    assert response.status_code == 200
    html = response.text
    # One chart container per metric key present in any of the runs.
    figures = re.findall(r'<figure class="runstore-chart" data-key="([^"]*)">', html)
    assert figures == ["grad", "train/loss", "val/acc"]
    assert html.count('class="runstore-chart"') == 3
    assert "/-/static-plugins/runstore/runstore_compare.js" in html
    assert "/-/static-plugins/runstore/uPlot-1.6.32.iife.min.js" in html
    # The differing-config table lists only the keys that differ.
    diff = html.split('class="runstore-kv-table runstore-diff"', 1)[1].split("</table>", 1)[0]
    keys = re.findall(r"<tr><th>([^<]*)</th>", diff)
    assert keys == ["key", "extra", "lr", "opt.name"]  # the header row, then the keys
    assert "<th>batch</th>" not in diff
    assert "<td>0.1</td><td>0.01</td><td>0.1</td>" in diff
    assert 'class="runstore-missing"' in diff  # extra: only run-b has it
    # Names are escaped in the page and in the JSON the charts read.
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    data = html.split('id="runstore-compare-data">', 1)[1].split("</script>", 1)[0]
    assert "<script>" not in data and "\\u003cscript\\u003e" in data
    assert f'"metricUrl": "/runstore/-/runstore/run/{runs["keys"]["run-b"]}/metric.json"' in data


def test_compare_same_config_and_repeated_param(runs: dict[str, Any]) -> None:
    a, c = runs["keys"]["run-a"], runs["keys"]["run-c"]
    (response,) = ui_get(runs["path"], f"/runstore/-/runstore/compare?runs={a}&runs={c}")
    assert response.status_code == 200
    assert "The runs have the same config." in response.text


def test_compare_rejects_bad_selections(runs: dict[str, Any]) -> None:
    a = runs["keys"]["run-a"]
    base = "/runstore/-/runstore/compare"
    eleven = ",".join(str(k) for k in range(1, 12))
    responses = ui_get(
        runs["path"], base, f"{base}?runs={a}", f"{base}?runs={a},{a}", f"{base}?runs={eleven}",
        f"{base}?runs={a},abc", f"{base}?runs={a},-3", f"{base}?runs={a},99999",
        f"{base}?runs={a},{10**30}", f"{base}?runs={a},%3Cscript%3E",
    )
    assert [r.status_code for r in responses] == [400] * 9
    assert "Choose 2 to 10 runs" in responses[1].text
    assert "(got 11)" in responses[3].text
    assert "run_key numbers" in responses[4].text
    assert "No run with run_key 99999" in responses[6].text
    assert "<script>" not in responses[8].text.split("<body", 1)[1].replace(
        "<script>\ndocument.body", "")
    (missing_db,) = ui_get(runs["path"], "/nosuchdb/-/runstore/compare?runs=1,2")
    assert missing_db.status_code == 404


def test_compare_takes_only_ascii_digits_within_int64(runs: dict[str, Any]) -> None:
    a, b = runs["keys"]["run-a"], runs["keys"]["run-b"]
    arabic = str(b).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    base = "/runstore/-/runstore/compare"
    # "²".isdigit() is True but int("²") raises; int("١") is 1; 5000 digits exceed
    # int()'s limit: each was a 500, or another run than the one asked for.
    responses = ui_get(runs["path"], f"{base}?runs=²,{a}", f"{base}?runs={a},{arabic}",
                     f"{base}?runs={a},{'9' * 5000}", f"{base}?runs={a},{2**63}",
                     f"{base}?runs={a},%2B{b}", f"{base}?runs={a},{b}.0")
    assert [r.status_code for r in responses] == [400] * 6
    assert all("digits 0-9" in r.text for r in responses)
    (padded,) = ui_get(runs["path"], f"{base}?runs=00{a},%20{b}%20")
    assert padded.status_code == 200


def test_compare_respects_permissions(runs: dict[str, Any]) -> None:
    private = {"databases": {"runstore": {"allow": {"id": "someone"}}}}
    (response,) = ui_get(runs["path"], _compare(runs, "run-a", "run-b"), metadata=private)
    assert response.status_code == 403


def test_run_tables_have_pick_checkboxes_and_the_compare_script(runs: dict[str, Any]) -> None:
    run_list, runs_table, other = ui_get(
        runs["path"], "/runstore/run_list", "/runstore/runs", "/runstore/metric_keys"
    )
    key = runs["keys"]["run-a"]
    box = (f'<input type="checkbox" class="runstore-pick" value="{key}" '
           'data-compare-url="/runstore/-/runstore/compare"')
    for page in (run_list, runs_table):
        assert page.status_code == 200
        assert box in page.text
        assert page.text.count('class="runstore-pick"') == len(runs["keys"])
        assert "/runstore/-/runstore/bundle.js?f=runstore_pick.js&amp;" in page.text
        assert f'href="/runstore/-/runstore/run/{key}">alpha</a>' in page.text
    assert "runstore_pick.js" not in other.text and "runstore-pick" not in other.text
    (script,) = ui_get(runs["path"], "/-/static-plugins/runstore/runstore_pick.js")
    assert script.status_code == 200 and "?runs=" in script.text


def _rows(path: Path, url: str) -> list[dict[str, Any]]:
    html, data = ui_get(path, url, url.replace("?", ".json?", 1) + "&_shape=array")
    assert html.status_code == 200, html.text
    assert data.status_code == 200, data.text
    return data.json()


def test_canned_query_best_run_per_project(runs: dict[str, Any]) -> None:
    base = "/runstore/best_run_per_project?metric=val/acc"
    best = _rows(runs["path"], base + "&project=p&goal=")
    # alpha's {"max": 0.93} (define_metric) beats beta's plain 0.91; the fork of alpha
    # (its summary taken at step 1) ties, and the earlier run wins a tie.
    assert [(r["project"], r["name"], r["value"], r["best_is"]) for r in best] == [
        ("p", "alpha", 0.93, "max")]
    assert best[0]["runs_with_metric"] == 3  # alpha, beta and the fork
    (page,) = ui_get(runs["path"], base + "&project=p&goal=")
    key = runs["keys"]["run-a"]
    assert f'<a class="runstore-run-link" href="/runstore/-/runstore/run/{key}">' in page.text
    every = _rows(runs["path"], base + "&project=&goal=")
    assert [(r["project"], r["run_id"]) for r in every] == [("p", "run-a"), ("q", "run-q")]
    lowest = _rows(runs["path"], base + "&project=p&goal=min")
    assert [(r["name"], r["value"]) for r in lowest] == [("beta", 0.91)]
    # train/loss is define_metric(summary="min", goal="minimize") on alpha: its min counts.
    loss = _rows(runs["path"], "/runstore/best_run_per_project?metric=train/loss&project=p&goal=")
    assert loss[0]["best_is"] == "min" and loss[0]["value"] == 0.4


def test_canned_query_runs_with_config_value(runs: dict[str, Any]) -> None:
    base = "/runstore/runs_with_config_value"
    exact = _rows(runs["path"], base + "?key=lr&value=0.1")
    assert sorted(r["run_id"] for r in exact) == ["run-a", "run-c"]
    numeric = _rows(runs["path"], base + "?key=lr&value=1e-1")
    assert sorted(r["run_id"] for r in numeric) == ["run-a", "run-c"]
    assert [r["run_id"] for r in _rows(runs["path"], base + "?key=batch&value=64")] == [
        "run-c", "run-b", "run-a"]  # newest first
    nested = _rows(runs["path"], base + "?key=opt.name&value=sgd")
    assert [r["run_id"] for r in nested] == ["run-b"]
    assert _rows(runs["path"], base + "?key=lr&value=abc") == []


def test_canned_query_failed_and_crashed_runs(runs: dict[str, Any]) -> None:
    rows = _rows(runs["path"], "/runstore/failed_and_crashed_runs?_=")
    assert sorted((r["run_id"], r["state"]) for r in rows) == [
        ("run-bad", "failed"), ("run-dead", "crashed")]
    assert [r["exit_code"] for r in rows if r["run_id"] == "run-bad"] == [1]


def test_canned_query_lineage(runs: dict[str, Any]) -> None:
    rows = _rows(runs["path"], "/runstore/run_lineage_of?run_id=run-a")
    assert [(r["run_id"], r["relation"], r["parent_id"], r["step"]) for r in rows] == [
        ("kid", "fork", "run-a", 1)]
    assert _rows(runs["path"], "/runstore/run_lineage_of?run_id=kid") == rows
    assert _rows(runs["path"], "/runstore/run_lineage_of?run_id=run-b") == []


def test_canned_queries_are_listed_only_for_stores(runs: dict[str, Any], tmp_path: Path) -> None:
    (page,) = ui_get(runs["path"], "/runstore?_tables=1")  # /runstore: the run list
    for name in ("best_run_per_project", "runs_with_config_value",
                 "failed_and_crashed_runs", "run_lineage_of"):
        assert f'href="/runstore/{name}"' in page.text
    import sqlite3

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    (response,) = ui_get(other, "/other/failed_and_crashed_runs")
    assert response.status_code == 404


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run with a 1M-point metric (one spike) and a 100k-point random metric."""
    path = tmp_path_factory.mktemp("long") / "runstore.db"
    conn = _store.connect(path)
    run_key = _store.insert_run(conn, {"entity": "me", "project": "p", "id": "long",
                                       "name": "long", "created_at": "2024-05-01T12:00:00"})
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, ["loss", "noise"], ids)
    rng = random.Random(5)
    for start in range(0, MILLION, 200_000):
        stop = start + 200_000
        points = [(run_key, ids["loss"], s, math.sin(s / 5000) + 1e-3 * (s % 7), None)
                  for s in range(start, stop)]
        if start <= SPIKE < stop:
            points[SPIKE - start] = (run_key, ids["loss"], SPIKE, 1e9, None)
        if start < HUNDRED_K:
            points += [(run_key, ids["noise"], s, rng.gauss(0, 1), None)
                       for s in range(start, min(stop, HUNDRED_K))]
        with _store.transaction(conn):
            _store.insert_points(conn, [(run_key, s, 1.7e9 + s, float(s))
                                        for s in range(start, stop)], points)
    conn.close()
    return {"path": path, "run_key": run_key, "ids": ids}


def test_chart_data_for_a_million_points_comes_from_blocks(long_run: dict[str, Any]) -> None:
    conn = _store.connect(long_run["path"])
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    start = time.perf_counter()
    data = _store.metric_points(conn, long_run["run_key"], "loss")
    elapsed = time.perf_counter() - start
    conn.set_trace_callback(None)
    conn.close()
    assert elapsed < 0.5, f"{elapsed:.3f} s for the chart data of 1M points"
    assert any("history_blocks" in sql for sql in statements)
    assert len(statements) < 10  # block rows, not one query per bucket
    assert data["total"] == MILLION and data["downsampled"] is True
    assert 1000 <= len(data["steps"]) <= 4000
    assert data["steps"] == sorted(set(data["steps"]))
    assert data["steps"][0] == 0 and data["steps"][-1] == MILLION - 1
    assert [v for v in data["values"] if v > 2] == [1e9]  # the one spike, once
    assert data["steps"][data["values"].index(1e9)] == SPIKE


def test_chart_data_route_on_a_million_points(long_run: dict[str, Any]) -> None:
    url = f"/runstore/-/runstore/run/{long_run['run_key']}/metric.json?key=loss"
    full, few, wide, zoomed = ui_get(
        long_run["path"], url, url + "&points=400",
        url + "&min_step=600000&max_step=899999", url + "&min_step=654000&max_step=655999",
    )
    for response, budget in ((full, 4000), (few, 400), (wide, 4000)):
        data = response.json()
        assert response.status_code == 200 and data["downsampled"] is True
        assert len(data["steps"]) <= budget
        assert len(response.content) < 120_000
        assert [v for v in data["values"] if v > 2] == [1e9]
    assert wide.json()["steps"][0] == 600_000 and wide.json()["steps"][-1] == 899_999
    assert wide.json()["total"] == 300_000
    exact = zoomed.json()
    assert exact["downsampled"] is False and exact["steps"] == list(range(654_000, 656_000))
    assert exact["values"][SPIKE - 654_000] == 1e9


@pytest.mark.parametrize("width", [1024, 2048, 5 * 1024])
@pytest.mark.parametrize("lo,hi", [(0, HUNDRED_K - 1), (1500, 97_001), (3072, 4095)])
def test_block_and_raw_buckets_agree(long_run: dict[str, Any], width: int, lo: int,
                                     hi: int) -> None:
    conn = _store.connect(long_run["path"])
    args = (conn, long_run["run_key"], long_run["ids"]["noise"], lo, hi)
    origin = lo // 1024 * 1024
    from_blocks = _chart.m4_buckets(*args, origin=origin, width=width, from_blocks=True)
    from_raw = _chart.m4_buckets(*args, origin=origin, width=width, from_blocks=False)
    conn.close()
    assert len(from_blocks) == -(-(hi - origin + 1) // width)
    assert from_blocks == from_raw  # count, first, last, min and max (steps and values)
    assert sum(stats[0] for stats in from_blocks.values()) == hi - lo + 1


def test_medium_ranges_downsample_from_raw_points_per_pixel(long_run: dict[str, Any]) -> None:
    conn = _store.connect(long_run["path"])
    data = _store.metric_points(conn, long_run["run_key"], "noise", max_points=4000)
    conn.close()
    assert data["total"] == HUNDRED_K and data["downsampled"] is True
    # One bucket per pixel column (1000 of 100 steps), not one per 1024-step block.
    assert len(data["steps"]) > 3000


def test_chart_data_without_history_blocks(tmp_path: Path) -> None:
    """A store from before history_blocks, opened by Datasette without an upgrade."""
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    run_key = _store.insert_run(conn, {"entity": "me", "project": "p", "id": "old", "name": "old",
                                       "created_at": "2024-05-01T12:00:00"})
    ids: dict[str, int] = {}
    with _store.transaction(conn):
        _store.intern_keys(conn, ["loss"], ids)
        _store.insert_points(conn, [(run_key, s, 1.7e9 + s, float(s)) for s in range(200_000)],
                             [(run_key, ids["loss"], s, 1e9 if s == 150_000 else 1.0 / (1 + s),
                               None) for s in range(200_000)])
    conn.execute("DROP TABLE history_blocks")
    data = _store.metric_points(conn, run_key, "loss")
    exact = _store.metric_points(conn, run_key, "loss", min_step=10, max_step=19)
    conn.close()
    assert data["total"] == 200_000 and len(data["steps"]) <= 4000 and 1e9 in data["values"]
    assert exact["steps"] == list(range(10, 20)) and exact["downsampled"] is False
