"""The sweep page and its links: real sweeps run by real `runstore.agent` (functions in this
process), a real Datasette app with the plugin, and one real headless Chromium."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import runstore
from runstore import _store
from ui_helpers import ui_get

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

EVIL = "<script>alert(1)</script>"
QUIET = {"silent": True}


def _make_sweep(store_dir: Path) -> dict[str, Any]:
    """A grid sweep of 6 trials (lr x opt, and a nested model.width of one value), one of
    which fails; the metric falls with lr, so lr matters most."""
    config = {
        "method": "grid", "name": f"grid {EVIL}",
        "metric": {"name": "val/loss", "goal": "minimize"},
        "parameters": {
            "lr": {"values": [0.001, 0.01, 0.1]},
            "opt": {"values": ["adam", EVIL]},
            "model": {"parameters": {"width": {"values": [32]}}},
        },
    }
    sweep_id = runstore.sweep(config, project="demo", dir=store_dir)
    calls: list[str] = []

    def train() -> None:
        run = runstore.init(settings=QUIET)
        calls.append(run.id)
        if run.config["lr"] == 0.1 and run.config["opt"] == "adam":
            raise RuntimeError("diverged")
        for step in range(3):
            runstore.log({"val/loss": run.config["lr"] * 10 / (step + 1)
                          + (0.001 if run.config["opt"] == "adam" else 0.0)})

    runstore.agent(sweep_id, function=train, dir=store_dir)
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        keys = dict(conn.execute("SELECT id, run_key FROM runs").fetchall())
    finally:
        conn.close()
    return {"id": sweep_id, "runs": calls, "run_keys": keys,
            "db": store_dir / "runstore.db", "dir": store_dir}


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _make_sweep(tmp_path_factory.mktemp("sweep"))


def _page_data(text: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="runstore-sweep-data">(.*?)</script>',
                      text, re.S)
    assert match, "no page data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def _rows(text: str) -> list[str]:
    body = text.split('id="runstore-sweep-runs"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)


def test_store_reads_the_sweep_page(swept: dict[str, Any]) -> None:
    conn = _store.connect(swept["db"])
    try:
        page = _store.sweep_page(conn, swept["id"])
        assert _store.sweep_page(conn, "nosuchsweep") is None
        listed = _store.store_sweeps(conn, "demo")
        assert _store.store_sweeps(conn, "other") == []
        first = _store.run_sweep(conn, swept["run_keys"][swept["runs"][0]])
    finally:
        conn.close()
    assert page is not None
    assert [p["name"] for p in page["params"]] == ["lr", "model.width", "opt"]  # dotted
    assert page["metric"] == "val/loss" and page["goal"] == "minimize"
    assert [t["status"] for t in page["trials"]].count("failed") == 1
    assert all(t["run_key"] is not None for t in page["trials"])
    assert len(page["agents"]) == 1 and page["agents"][0]["trials"] == 6
    (item,) = listed
    assert item["id"] == swept["id"] and item["trials"] == 6
    assert item["best"] == pytest.approx(0.001 * 10 / 3)  # lr 0.001 with the EVIL optimiser
    assert first == {"id": swept["id"], "name": f"grid {EVIL}", "seq": 0}


def test_sweep_page_shows_parameters_outcomes_metrics_and_importance(
        swept: dict[str, Any]) -> None:
    (response,) = ui_get(swept["db"], f"/runstore/-/runstore/sweep/{swept['id']}")
    assert response.status_code == 200
    text = response.text
    # header: name (escaped), id, method, state, metric and goal
    assert EVIL not in text
    assert f"Sweep grid {html.escape(EVIL, quote=False)}" in text
    for part in (swept["id"], "<dd>grid</dd>", "val/loss (minimize)", "runstore-state-finished"):
        assert part in text, part
    # parameters as columns, then the metric
    header = text.split('id="runstore-sweep-runs"', 1)[1].split("</thead>", 1)[0]
    assert re.findall(r"<th[^>]*>([^<]*)</th>", header) == [
        "#", "run", "status", "lr", "model.width", "opt", "val/loss"]
    rows = _rows(text)
    assert len(rows) == 6
    outcomes = [re.search(r"runstore-state-(\w+)", row).group(1) for row in rows]  # type: ignore[union-attr]
    assert sorted(outcomes) == ["failed"] + ["finished"] * 5
    failed = rows[outcomes.index("failed")]
    assert ">0.1<" in failed and ">adam<" in failed
    assert failed.rstrip().endswith('<td class="runstore-num"></td>')  # no metric
    # each run is linked; the escaped hostile parameter value is a cell
    for run_id in swept["runs"]:
        assert f'href="/runstore/-/runstore/run/{swept["run_keys"][run_id]}"' in text
    assert f">{html.escape(EVIL)}<" in text
    # the best metric (lr 0.001, the EVIL optimiser: 0.01/3) as a sortable number
    assert 'data-value="0.0033333333333333335"' in text and ">0.00333333<" in text
    # importance: lr (numeric, by value) and opt one-hot, and Optuna's (or why not)
    assert re.search(r"<tr><th>lr</th><td></td><td>value</td><td>5</td>\s*"
                     r"<td class=\"runstore-num\">\+(0\.9\d\d|1\.000)</td>", text)
    assert "<tr><th>opt</th><td>adam</td><td>one-hot</td>" in text
    assert f"<tr><th>opt</th><td>{html.escape(EVIL)}</td><td>one-hot</td>" in text
    if importlib.util.find_spec("optuna") is None:
        assert "optuna is not installed" in text
    else:
        optuna_table = text.split('class="runstore-kv-table runstore-sweep-optuna"', 1)[1]
        assert "<tr><th>lr</th>" in optuna_table.split("</table>", 1)[0]
    # agents, config as YAML (escaped)
    assert "<td>6</td></tr>" in text.split("runstore-sweep-agents", 1)[1]
    assert "method: grid" in text and f"name: grid {html.escape(EVIL)}" in text
    # page data for the charts: the JSON stays inside its <script> (no "</script>" in it)
    data = _page_data(text)
    assert [a["name"] for a in data["axes"]] == ["lr", "model.width", "opt", "val/loss"]
    assert data["axes"][0] == {"name": "lr", "type": "linear"}  # numeric `values`
    assert data["axes"][2] == {"name": "opt", "type": "category", "categories": ["adam", EVIL]}
    best = [t["best"] for t in data["trials"]]
    assert best == sorted(best, key=lambda b: -b if b is not None else 0)  # never worse
    assert best[-1] == pytest.approx(0.01 / 3)


def test_log_axes_and_few_trials_explain_missing_optuna(tmp_path: Path) -> None:
    sweep_id = runstore.sweep(
        {"method": "random", "metric": {"name": "acc", "goal": "maximize"}, "run_cap": 2,
         "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                        "flag": {"values": [True, False]}}},
        project="p", dir=tmp_path, seed=1)

    def train() -> None:
        run = runstore.init(settings=QUIET)
        runstore.log({"acc": 1 - run.config["lr"]})

    runstore.agent(sweep_id, function=train, dir=tmp_path)
    (response,) = ui_get(tmp_path / "runstore.db", f"/runstore/-/runstore/sweep/{sweep_id}")
    assert response.status_code == 200
    data = _page_data(response.text)
    assert data["axes"][0]["type"] == "category"  # flag: bools are categories
    assert data["axes"][1] == {"name": "lr", "type": "log"}
    assert "acc (maximize)" in response.text
    assert "needs at least 5 trials with a metric; this sweep has 2." in response.text
    assert "<td>log10(value)</td>" in response.text


def test_unknown_sweep_is_404_and_run_list_and_run_page_link_sweeps(
        swept: dict[str, Any]) -> None:
    run_key = swept["run_keys"][swept["runs"][1]]
    missing, run_list, other, run_page, sweeps = ui_get(
        swept["db"], "/runstore/-/runstore/sweep/nosuchsweep",
        "/runstore/run_list?project=demo", "/runstore/run_list?project=other",
        f"/runstore/-/runstore/run/{run_key}", "/runstore/-/runstore/sweeps?project=demo")
    assert missing.status_code == 404
    link = f'href="/runstore/-/runstore/sweep/{swept["id"]}"'
    assert link in run_list.text
    assert f"Sweep grid {html.escape(EVIL)} (grid, 6 trials)" in run_list.text
    assert link not in other.text
    assert "<dt>sweep</dt>" in run_page.text and link in run_page.text
    assert "(trial 1)" in run_page.text
    assert sweeps.status_code == 200 and link in sweeps.text and EVIL not in sweeps.text


def test_browser_draws_the_sweep_charts(swept: dict[str, Any], tmp_path: Path) -> None:
    from test_browser import _browser, _chromium, _playwright
    from test_browser import _Server as Server

    from helpers import free_port

    sync_playwright, executable = _playwright(), _chromium()
    port = free_port()
    server = Server(swept["dir"], port)
    try:
        login = server.login_url()
        server.wait_listening(port)
        with _browser(sync_playwright, executable, tmp_path, 1400) as (_, page):
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text)
                    if m.type == "error" else None)
            page.goto(login)
            page.goto(f"http://127.0.0.1:{port}/runstore/-/runstore/sweep/{swept['id']}")
            page.wait_for_selector("#runstore-sweep-parallel svg polyline")
            page.wait_for_selector("#runstore-sweep-best .uplot canvas")
            drawn = page.evaluate("""() => {
              const svg = document.querySelector("#runstore-sweep-parallel svg");
              const canvas = document.querySelector("#runstore-sweep-best .uplot canvas");
              const ctx = canvas.getContext("2d");
              const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
              let painted = 0;
              for (let i = 3; i < px.length; i += 4) { if (px[i] > 0) painted++; }
              return {axes: Array.from(svg.querySelectorAll(".runstore-parallel-axis"))
                        .map((g) => g.dataset.axis),
                      lines: svg.querySelectorAll(".runstore-parallel-trial").length,
                      width: svg.getBoundingClientRect().width, painted,
                      scripts: document.querySelectorAll("script:not([src])").length};
            }""")
            assert drawn["axes"] == ["lr", "model.width", "opt", "val/loss"], drawn
            assert drawn["lines"] == 6 and drawn["width"] > 100, drawn
            assert drawn["painted"] > 500, drawn
            # sorting: clicking the metric header puts the best trial first
            page.click("#runstore-sweep-runs thead th:last-child")
            first = page.text_content("#runstore-sweep-runs tbody tr:first-child td:last-child")
            assert first is not None and first.strip() == "0.00333333"
            page.click("#runstore-sweep-runs thead th:last-child")
            first = page.text_content("#runstore-sweep-runs tbody tr:first-child td:last-child")
            assert first is not None and first.strip() != "0.00333333"
            page.screenshot(path=str(tmp_path / "sweep.png"), full_page=True)
            assert console_errors == [], console_errors
    finally:
        server.stop()


def test_a_claimed_trial_without_its_run_yet_is_pending(tmp_path: Path) -> None:
    from runstore._store import _sweeps

    sweep_id = runstore.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2]}}},
                              project="p", dir=tmp_path)
    conn = _store.connect(tmp_path / "runstore.db")
    try:
        (sweep,) = _sweeps.find_sweeps(conn, sweep_id)
        with _store.transaction(conn):
            _sweeps.insert_trial(conn, {
                "sweep_key": sweep["sweep_key"], "seq": 0, "attempt": 0, "params": {"x": 1},
                "coords": {}, "run_id": "notyet", "agent_id": "a1",
                "claimed_at": "2024-05-01T12:00:00+00:00"})
    finally:
        conn.close()
    (response,) = ui_get(tmp_path / "runstore.db", f"/runstore/-/runstore/sweep/{sweep_id}")
    assert response.status_code == 200
    (row,) = _rows(response.text)
    assert "runstore-state-other" in row and ">pending<" in row and "<td>notyet</td>" in row
    assert "No trial has a metric" not in response.text  # said by the script, in the browser
    assert "needs at least 5 trials with a metric; this sweep has 0." in response.text
