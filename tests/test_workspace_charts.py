"""The workspace charts (issue 13): charts of every run a runs table's filter selects.

Store level: `workspace_series` draws M4 points from the per-block summaries (a 120k-point
run costs the same statements as a 60k one), keeps spikes, caps runs at 100, aligns a
metric against another by step, and puts time on x from `steps`. Then the series.json
route of a real Datasette app, the scripts on tables of runs only, and headless Chromium
on a real `runstore ui`: overlaid charts that follow the URL's filter, a colour swatch
per table row that shows and hides its run, grouping drawn as a mean over a min-max
band, parallel coordinates and scatter, metric-vs-metric, and run names (hostile HTML)
kept as text.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runstore import _store
from ui_helpers import T0, add_points, add_run, ui_get

EVIL = '<img src=x onerror="window.__pwned=1">'


def _conn(tmp_path: Path) -> sqlite3.Connection:
    return _store.connect(tmp_path / "runstore.db")


def _count_statements(conn: sqlite3.Connection, call: Any) -> tuple[Any, int]:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        result = call()
    finally:
        conn.set_trace_callback(None)
    return result, len(statements)


# -- the store ---------------------------------------------------------------------------

def test_m4_from_blocks_keeps_spikes_and_costs_the_same_for_a_bigger_run(
        tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    small = add_run(conn, "p", "a", "a")
    big = add_run(conn, "p", "b", "b")
    add_points(conn, small, "loss", [(s, math.sin(s / 500)) for s in range(60_000)])
    values = [math.cos(s / 900) for s in range(120_000)]
    values[83_457] = 50.0  # one spike
    add_points(conn, big, "loss", list(enumerate(values)))
    one, cost_small = _count_statements(
        conn, lambda: _store.workspace_series(conn, [small], ["loss"], points=200))
    two, cost_big = _count_statements(
        conn, lambda: _store.workspace_series(conn, [big], ["loss"], points=200))
    assert cost_small == cost_big  # from the blocks: no statement per point or per bucket
    (s1,), (s2,) = one["series"], two["series"]
    assert s1["total"] == 60_000 and s2["total"] == 120_000
    assert s1["downsampled"] and s2["downsampled"]
    assert 100 < len(s2["x"]) <= 200 and s2["x"] == sorted(s2["x"]) and "steps" not in s2
    assert max(s2["y"]) == 50.0 and s2["x"][s2["y"].index(50.0)] == 83_457
    assert min(s1["y"]) == pytest.approx(-1, abs=1e-6)
    # Both runs in one call: one block query for all of them.
    both = _store.workspace_series(conn, [small, big], ["loss"], points=200)
    assert [s["run_key"] for s in both["series"]] == [small, big]
    assert both["series"][1]["y"] == s2["y"]


def test_series_read_before_are_reused_until_their_blocks_change(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    run = add_run(conn, "p", "a", "a")
    add_points(conn, run, "loss", [(s, float(s % 100)) for s in range(20_000)])
    first, cost_first = _count_statements(
        conn, lambda: _store.workspace_series(conn, [run], ["loss"], points=40))
    again, cost_again = _count_statements(
        conn, lambda: _store.workspace_series(conn, [run], ["loss"], points=40))
    assert again == first and cost_again < cost_first  # no block read the second time
    add_points(conn, run, "loss", [(20_000, 1e6)])  # a new point: its blocks change
    (fresh,) = _store.workspace_series(conn, [run], ["loss"], points=40)["series"]
    assert fresh["total"] == 20_001 and max(fresh["y"]) == 1e6
    # a rewritten value with the same count of points changes the blocks' checksum too
    with _store.transaction(conn):
        conn.execute("UPDATE history SET value = -5 WHERE run_key = ? AND step = 100", (run,))
        _store.rebuild_blocks(conn, run, 100)
    (rewritten,) = _store.workspace_series(conn, [run], ["loss"], points=40)["series"]
    assert rewritten["total"] == 20_001 and min(rewritten["y"]) == -5


def test_a_short_dense_run_gets_m4_over_its_raw_points(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    run = add_run(conn, "p", "a", "a")
    values = [1.0] * 5000
    values[2345], values[77] = 9.0, -3.0
    add_points(conn, run, "loss", list(enumerate(values)))
    (series,) = _store.workspace_series(conn, [run], ["loss"], points=400)["series"]
    assert series["downsampled"] and series["total"] == 5000
    assert 100 < len(series["x"]) <= 400 and series["x"] == sorted(series["x"])
    assert series["x"][series["y"].index(9.0)] == 2345
    assert series["x"][series["y"].index(-3.0)] == 77
    assert series["x"][0] == 0 and series["x"][-1] == 4999


def test_small_runs_are_exact_and_runs_without_the_metric_have_no_series(
        tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    a = add_run(conn, "p", "a", "a", config={"lr": 0.1, "opt": {"name": "adam"}},
                summary={"acc": 0.5}, run_group="g1", job_type="train")
    b = add_run(conn, "p", "b", "b")
    add_points(conn, a, "acc", [(0, 0.1), (1, math.inf), (2, 0.3), (3, None, '"x"')])
    add_points(conn, b, "other", [(0, 1.0)])
    data = _store.workspace_series(conn, [b, a, 999], ["acc", "missing"], points=400)
    assert [r["run_key"] for r in data["runs"]] == [b, a]  # in the order asked, 999 left out
    assert data["runs"][1]["config"] == {"lr": 0.1, "opt": {"name": "adam"}}
    assert data["runs"][1]["run_group"] == "g1" and data["runs"][1]["job_type"] == "train"
    (series,) = data["series"]
    assert series == {"run_key": a, "key": "acc", "x": [0, 2], "y": [0.1, 0.3],
                      "total": 2, "downsampled": False}
    assert _store.workspace_keys(conn, [a, b]) == ["acc", "other"]
    assert _store.workspace_keys(conn, [b]) == ["other"]


def test_at_most_100_runs(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    keys = [add_run(conn, "p", f"r{i}", f"r{i}") for i in range(101)]
    for key in keys:
        add_points(conn, key, "loss", [(0, 1.0), (1, 0.5)])
    data = _store.workspace_series(conn, keys[:100], ["loss"])
    assert len(data["runs"]) == len(data["series"]) == 100
    with pytest.raises(ValueError, match="at most 100 runs"):
        _store.workspace_series(conn, keys, ["loss"])


def test_metric_against_metric_is_aligned_by_step(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    run = add_run(conn, "p", "a", "a")
    # val/loss every 10 steps from step 5; tokens_seen every 4 steps from step 8
    add_points(conn, run, "val/loss", [(s, 1.0 / (1 + s)) for s in range(5, 60, 10)])
    add_points(conn, run, "tokens_seen", [(s, 1000.0 * s) for s in range(8, 60, 4)])
    data = _store.workspace_series(conn, [run], ["val/loss"], x="metric",
                                   x_metric="tokens_seen")
    (series,) = data["series"]
    # step 5 has no tokens_seen yet: left out; step 15 takes step 12's value, 25 -> 24 ...
    assert series["steps"] == [15, 25, 35, 45, 55]
    assert series["x"] == [12000.0, 24000.0, 32000.0, 44000.0, 52000.0]
    assert series["y"] == [1.0 / (1 + s) for s in series["steps"]]
    with pytest.raises(ValueError):
        _store.workspace_series(conn, [run], ["val/loss"], x="metric")


def test_time_axes_come_from_the_steps_table(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    run = add_run(conn, "p", "a", "a")
    add_points(conn, run, "loss", [(s, float(s)) for s in range(10)], every=2.0)
    runtime = _store.workspace_series(conn, [run], ["loss"], x="runtime")["series"][0]
    wall = _store.workspace_series(conn, [run], ["loss"], x="time")["series"][0]
    assert runtime["x"] == [2.0 * s for s in range(10)]
    assert wall["x"] == [T0 + 2.0 * s for s in range(10)]


# -- the Datasette app -------------------------------------------------------------------

@pytest.fixture
def small_store(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "store" / "runstore.db"
    conn = _store.connect(path)
    keys = []
    for i in range(3):
        key = add_run(conn, "mnist", f"r{i}", f"{EVIL}{i}", config={"lr": 10.0 ** -i},
                      summary={"acc": 0.5 + i / 10, "nested": {"max": 1.0}, "bad": math.nan})
        add_points(conn, key, "loss", [(s, 1.0 / (1 + s + i)) for s in range(50)])
        keys.append(key)
    conn.close()
    return {"path": path, "keys": keys}


@pytest.mark.ui
def test_series_route_answers_runs_keys_and_points(small_store: dict[str, Any]) -> None:
    keys = small_store["keys"]
    runs = ",".join(map(str, keys))
    base = "/runstore/-/runstore/series.json"
    ok, only_keys, first, too_many, bad, bad_x = ui_get(
        small_store["path"],
        f"{base}?runs={runs}&metric=loss&points=20",
        f"{base}?runs={runs}",
        f"{base}?runs={runs}&first=24&points=20",
        f"{base}?runs={','.join(str(i) for i in range(1, 102))}",
        f"{base}?runs=1,x",
        f"{base}?runs={runs}&metric=loss&x=metric",
    )
    assert ok.status_code == 200, ok.text
    data = ok.json()
    assert [r["name"] for r in data["runs"]] == [f"{EVIL}{i}" for i in range(3)]
    # config and summary flattened to scalars (NaN left out: JSON cannot carry it)
    assert data["runs"][0]["summary"] == {"acc": 0.5, "nested.max": 1.0}
    assert data["keys"] == ["loss"]
    assert [s["run_key"] for s in data["series"]] == keys
    assert all(s["downsampled"] and len(s["x"]) <= 20 for s in data["series"])
    assert only_keys.json()["series"] == [] and only_keys.json()["keys"] == ["loss"]
    assert first.json()["series"] == data["series"]  # the first 24 keys: here just loss
    assert too_many.status_code == 400 and "At most 100 runs" in too_many.text
    assert bad.status_code == 400
    assert bad_x.status_code == 400


@pytest.mark.ui
def test_charts_script_only_on_tables_of_runs(small_store: dict[str, Any]) -> None:
    runs_page, run_list, keys_page = ui_get(
        small_store["path"], "/runstore/runs", "/runstore/run_list", "/runstore/metric_keys")
    for page in (runs_page, run_list):
        assert page.status_code == 200
        assert "runstore_workspace.js" in page.text and "runstore_parallel.js" in page.text
        assert "runstore_workspace.css" in page.text
    assert keys_page.status_code == 200
    assert "runstore_workspace.js" not in keys_page.text


# -- headless Chromium -----------------------------------------------------------------

CHARTS_JS = r"""
() => {
  const ws = window.runstoreWorkspace;
  return {
    status: document.querySelector(".runstore-ws-status").textContent,
    charts: ws.charts.map((c) => ({
      key: c.key, lines: c.lines, grouped: c.grouped,
      series: c.u ? c.u.series.length - 1 : 0,
      bands: c.u && c.u.bands ? c.u.bands.length : 0,
      xLabel: c.u ? c.u.axes[0].label : null,
      painted: (() => {
        const canvas = c.figure.querySelector("canvas");
        if (!canvas) { return 0; }
        const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i]) { n++; } }
        return n;
      })(),
      data: c.u ? c.u.data : null,
    })),
    swatches: Array.from(document.querySelectorAll("button.runstore-swatch"))
      .map((b) => b.closest("tr").dataset.runKey),
    parallel: document.querySelectorAll(".runstore-ws-parallel .runstore-parallel-trial").length,
    axes: Array.from(document.querySelectorAll(".runstore-ws-parallel .runstore-parallel-axis"))
      .map((g) => g.dataset.axis),
    scatter: document.querySelectorAll(".runstore-ws-scatter circle").length,
    pwned: window.__pwned || 0,
    imgs: document.querySelectorAll("img").length,
    gridColumns: getComputedStyle(document.querySelector(".runstore-ws-grid"))
      .gridTemplateColumns.split(" ").length,
  };
}
"""


def _make_runs(store_dir: Path) -> dict[str, int]:
    conn = _store.connect(store_dir / "runstore.db")
    keys = {}
    for i in range(6):
        group = "wide" if i % 2 else "narrow"
        key = add_run(conn, "mnist", f"r{i}", f"{EVIL}{i}", state="finished",
                      run_group=group, job_type="train",
                      config={"lr": [0.1, 0.01, 0.001][i % 3], "opt": ["adam", "sgd"][i % 2],
                              "seed": i},
                      summary={"val/loss": 1.0 / (1 + i), "acc": i / 10})
        add_points(conn, key, "train/loss",
                   [(s, 2.0 / (1 + s / (100 + 50 * i))) for s in range(3000)])
        add_points(conn, key, "val/loss",
                   [(s, 1.0 / (1 + s / 500 + i)) for s in range(0, 3000, 100)])
        add_points(conn, key, "tokens_seen", [(s, 1000.0 * s) for s in range(0, 3000, 10)])
        keys[f"r{i}"] = key
    conn.close()
    return keys


def _wait_drawn(page: Any, after: str = "0") -> None:
    page.wait_for_function(
        "(after) => { const p = document.querySelector('.runstore-workspace');"
        " return p && Number(p.dataset.drawn || 0) > Number(after); }", arg=after)


def _drawn_at(page: Any) -> str:
    return str(page.evaluate("() => document.querySelector('.runstore-workspace')"
                             ".dataset.drawn || '0'"))


@pytest.mark.ui
def test_browser_workspace_charts_follow_the_filter(tmp_path: Path) -> None:
    from test_browser import _browser, _chromium, _playwright
    from test_browser import _Server as Server

    from helpers import free_port

    sync_playwright, executable = _playwright(), _chromium()
    store_dir = tmp_path / "store"
    keys = _make_runs(store_dir)
    port = free_port()
    server = Server(store_dir, port)
    try:
        login = server.login_url()
        server.wait_listening(port)
        base = f"http://127.0.0.1:{port}/runstore"
        with _browser(sync_playwright, executable, tmp_path, 1400) as (_, page):
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text)
                    if m.type in ("error", "warning") else None)
            page.goto(login)
            page.set_viewport_size({"width": 1440, "height": 1000})

            # Every run: one chart per metric, one line per run, a swatch per row.
            page.goto(f"{base}/runs")
            _wait_drawn(page)
            state = page.evaluate(CHARTS_JS)
            assert [c["key"] for c in state["charts"]] == ["tokens_seen", "train/loss",
                                                           "val/loss"], state["status"]
            for chart in state["charts"]:
                assert chart["lines"] == chart["series"] == 6, chart["key"]
                assert chart["painted"] > 1000, chart["key"]
            assert sorted(map(int, state["swatches"])) == sorted(keys.values())
            assert 2 <= state["gridColumns"] <= 4
            assert state["parallel"] == 6 and state["scatter"] == 6
            assert state["axes"] == ["lr", "opt", "seed", "acc"]  # varying config, then metric
            assert state["pwned"] == 0 and state["imgs"] == 0  # names are text
            page.screenshot(path=str(tmp_path / "workspace.png"), full_page=True)

            # Hovering a line names its run (as text) in a tooltip.
            box = page.locator(".runstore-ws-chart >> nth=1").locator(".u-over").bounding_box()
            assert box is not None
            tips: list[str] = []
            for i in range(40):
                page.mouse.move(box["x"] + box["width"] * 0.2,
                                box["y"] + box["height"] * (0.02 + i * 0.025))
                tips = page.evaluate("() => Array.from(document.querySelectorAll("
                                     "'.runstore-ws-tip')).filter((t) => !t.hidden)"
                                     ".map((t) => t.textContent)")
                if tips:
                    break
            assert tips and tips[0].startswith(EVIL), tips

            # A filter in the URL: fewer lines.
            page.goto(f"{base}/runs?run_group=wide")
            _wait_drawn(page)
            state = page.evaluate(CHARTS_JS)
            assert all(c["lines"] == 3 for c in state["charts"]), state
            assert len(state["swatches"]) == 3 and state["parallel"] == 3

            # A swatch hides its run, a second click shows it again.
            before = _drawn_at(page)
            page.click("button.runstore-swatch >> nth=0")
            _wait_drawn(page, before)
            assert all(c["lines"] == 2 for c in page.evaluate(CHARTS_JS)["charts"])
            before = _drawn_at(page)
            page.click("button.runstore-swatch >> nth=0")
            _wait_drawn(page, before)
            assert all(c["lines"] == 3 for c in page.evaluate(CHARTS_JS)["charts"])

            # Grouping: by a config key, a mean over a min-max band per group.
            page.goto(f"{base}/runs")
            _wait_drawn(page)
            before = _drawn_at(page)
            page.select_option(".runstore-ws-group", "config.opt")
            _wait_drawn(page, before)
            state = page.evaluate(CHARTS_JS)
            for chart in state["charts"]:
                assert chart["grouped"] and chart["lines"] == 2, chart["key"]
                assert chart["series"] == 6 and chart["bands"] == 2, chart["key"]
                mean, low, high = chart["data"][3], chart["data"][2], chart["data"][1]
                assert all(lo - 1e-9 <= m <= hi + 1e-9
                           for lo, m, hi in zip(low, mean, high, strict=True) if m is not None)
                if chart["key"] != "tokens_seen":  # the same in every run
                    assert any(hi > lo for lo, hi in zip(low, high, strict=True)
                               if lo is not None)  # a band, not a line
            page.screenshot(path=str(tmp_path / "grouped.png"), full_page=True)
            before = _drawn_at(page)
            page.select_option(".runstore-ws-group", "")
            _wait_drawn(page, before)

            # Metric picker: a regex; then val/loss against tokens_seen.
            before = _drawn_at(page)
            page.fill(".runstore-ws-match", "^val/")
            _wait_drawn(page, before)
            state = page.evaluate(CHARTS_JS)
            assert [c["key"] for c in state["charts"]] == ["val/loss"]
            before = _drawn_at(page)
            page.select_option(".runstore-ws-x", "metric:tokens_seen")
            _wait_drawn(page, before)
            (chart,) = page.evaluate(CHARTS_JS)["charts"]
            assert chart["xLabel"] == "tokens_seen"
            xs = chart["data"][1][0]  # the first run's x values: tokens_seen at each step
            assert xs == [1000.0 * s for s in range(0, 3000, 100)]
            page.screenshot(path=str(tmp_path / "metric-x.png"), full_page=True)
            assert console == [], console
    finally:
        server.stop()
