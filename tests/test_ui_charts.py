"""Chart settings, live runs and the run list as home: the chart-data route's times, the
status route a live page polls, live markers, the chart controls on the run and compare
pages, and the redirects of `/<db>` (and `/`) of a store to its run list. Route tests
with Datasette's test client, on both Datasette lines (see the Makefile)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette

from runstore import _store
from ui_helpers import T0, add_points, add_run, run_url, ui_get

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`


def _now(offset_s: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished run (with a step whose `steps` row is gone), a live running run (fresh
    heartbeat, 50,000 points) and a running run whose writer stopped beating."""
    path = tmp_path_factory.mktemp("charts") / "runstore.db"
    conn = _store.connect(path)
    done = add_run(conn, "charts", "done1", "done", state="finished", runtime=10.0)
    add_points(conn, done, "train/loss", [(0, 1.0), (1, 0.5), (2, -0.25), (3, 0.125)],
               every=2.0)
    conn.execute("DELETE FROM steps WHERE run_key = ? AND step = 3", (done,))
    conn.commit()
    live = add_run(conn, "charts", "live1", "live run", state="running",
                   heartbeat_at=_now(), created_at=_now(-60))
    add_points(conn, live, "train/loss", [(s, 1.0 / (1 + s)) for s in range(50_000)],
               every=0.5)
    stale = add_run(conn, "charts", "stale1", "stale run", state="running",
                    heartbeat_at=_now(-3600), created_at=_now(-7200))
    add_points(conn, stale, "train/loss", [(0, 1.0)], every=2.0)
    conn.close()
    return {"path": path, "done": done, "live": live, "stale": stale}


# The chart-data route: times on request.

def test_metric_json_times_on_request(store: dict[str, Any]) -> None:
    url = run_url(store["done"]) + "/metric.json?key=train/loss"
    plain, timed = ui_get(store["path"], url, url + "&times=1")
    assert plain.status_code == 200 and timed.status_code == 200
    assert "timestamps" not in plain.json() and "runtimes" not in plain.json()
    data = timed.json()
    assert data["steps"] == [0, 1, 2, 3]
    assert data["values"] == [1.0, 0.5, -0.25, 0.125]
    # Aligned with steps; step 3 has no `steps` row: None, not a made-up time.
    assert data["timestamps"] == [T0, T0 + 2, T0 + 4, None]
    assert data["runtimes"] == [0.0, 2.0, 4.0, None]


def test_metric_json_times_follow_downsampled_and_new_points(store: dict[str, Any]) -> None:
    url = run_url(store["live"]) + "/metric.json?key=train/loss&times=1"
    overview, newer, zoomed = ui_get(store["path"], url + "&points=400",
                                   url + "&min_step=49990", url + "&min_step=100&max_step=119")
    data = overview.json()
    assert data["downsampled"] is True and len(data["steps"]) <= 400
    assert len(data["timestamps"]) == len(data["runtimes"]) == len(data["steps"])
    for step, stamp, runtime in zip(data["steps"], data["timestamps"], data["runtimes"],
                                    strict=True):
        assert stamp == T0 + 0.5 * step and runtime == 0.5 * step
    # A live page asks only for what came after the last step it has.
    assert newer.json()["steps"] == list(range(49_990, 50_000))
    assert newer.json()["runtimes"] == [0.5 * s for s in range(49_990, 50_000)]
    assert zoomed.json()["downsampled"] is False
    assert zoomed.json()["timestamps"] == [T0 + 0.5 * s for s in range(100, 120)]


def test_step_times_in_the_store(store: dict[str, Any]) -> None:
    conn = _store.connect(store["path"])
    try:
        from runstore._store._chart import step_times

        assert step_times(conn, store["done"], []) == ([], [])
        assert step_times(conn, store["done"], [2, 0, 3]) == ([T0 + 4, T0, None],
                                                               [4.0, 0.0, None])
        # Parameters only: a step list is data, never SQL.
        assert step_times(conn, store["done"], [1]) == ([T0 + 2], [2.0])
    finally:
        conn.close()


# The status route and live markers.

def test_status_json(store: dict[str, Any]) -> None:
    live, done, stale, missing = ui_get(
        store["path"], *(run_url(store[k]) + "/status.json" for k in ("live", "done", "stale")),
        run_url(999) + "/status.json")
    assert live.status_code == 200
    body = live.json()
    assert body["state"] == "running" and body["live"] is True
    assert body["last_step"] == 49_999 and body["metric_keys"] == ["train/loss"]
    assert body["runtime"] >= 59 and body["runtime_text"]
    assert done.json()["state"] == "finished" and done.json()["live"] is False
    # A running run whose writer stopped beating shows as crashed, as run_list has it.
    assert stale.json()["state"] == "crashed" and stale.json()["live"] is False
    assert missing.status_code == 404


def test_status_json_respects_permissions(store: dict[str, Any]) -> None:
    private = {"databases": {"runstore": {"allow": {"id": "someone"}}}}
    (response,) = ui_get(store["path"], run_url(store["live"]) + "/status.json", metadata=private)
    assert response.status_code == 403


def test_run_page_live_badge_and_page_data(store: dict[str, Any]) -> None:
    live, done, stale = ui_get(store["path"], run_url(store["live"]), run_url(store["done"]),
                             run_url(store["stale"]))
    html = live.text
    assert '<span class="runstore-live" title="Live: its process is still logging">' \
           '<span class="runstore-live-dot" aria-hidden="true"></span>' \
           '<span class="runstore-state runstore-state-running">running</span>' in html
    assert f'data-runstore-state="{store["live"]}"' in html
    assert f'"statusUrl": "{run_url(store["live"])}/status.json"' in html
    assert '"live": true' in html
    assert "runstore-live-dot" not in done.text and '"live": false' in done.text
    assert 'runstore-state-crashed">crashed</span>' in stale.text
    assert "runstore-live-dot" not in stale.text


def test_run_page_has_chart_controls(store: dict[str, Any]) -> None:
    (page,) = ui_get(store["path"], run_url(store["done"]))
    html = page.text
    assert '<div class="runstore-controls" role="group" aria-label="Chart settings">' in html
    assert 'class="runstore-smooth" min="0" max="0.99" step="0.01"' in html
    assert 'type="checkbox" class="runstore-log"' in html
    for value in ("step", "runtime", "time"):
        assert f'<option value="{value}">' in html
    charts = html.index("/-/static-plugins/runstore/runstore_charts.js")
    assert charts < html.index("/-/static-plugins/runstore/runstore_run.js")
    (script,) = ui_get(store["path"], "/-/static-plugins/runstore/runstore_charts.js")
    assert script.status_code == 200 and "distr: 3" in script.text
    assert "http://" not in script.text and "https://" not in script.text


def test_compare_page_has_controls_and_live_runs(store: dict[str, Any]) -> None:
    (page,) = ui_get(store["path"],
                   f"/runstore/-/runstore/compare?runs={store['live']},{store['done']}")
    assert page.status_code == 200
    html = page.text
    assert 'class="runstore-controls"' in html
    assert "/-/static-plugins/runstore/runstore_charts.js" in html
    data = json.loads(html.split('id="runstore-compare-data">', 1)[1].split("</script>")[0])
    assert [(r["runKey"], r["statusUrl"], r["live"]) for r in data["runs"]] == [
        (store["live"], run_url(store["live"]) + "/status.json", True),
        (store["done"], run_url(store["done"]) + "/status.json", False)]
    assert html.count("runstore-live-dot") == 1


def test_run_list_marks_running_runs_live(store: dict[str, Any]) -> None:
    (page,) = ui_get(store["path"], "/runstore/run_list")
    html = page.text
    # run_list and the runs view show the stale one as crashed, the running one live;
    # the run_records table keeps the states as written, without the marker.
    (runs, records) = ui_get(store["path"], "/runstore/runs", "/runstore/run_records")
    for shown in (html, runs.text):
        assert shown.count("runstore-live-dot") == 1
        assert '<span class="runstore-live-dot" aria-hidden="true"></span><span class="' \
               'runstore-state runstore-state-running">running</span>' in shown
        assert 'runstore-state-crashed">crashed</span>' in shown
    assert "runstore-live-dot" not in records.text
    assert 'runstore-state-crashed">crashed</span>' not in records.text


# The run list as the home of a store.

def test_run_list_page_is_titled_runs_without_view_sql(store: dict[str, Any]) -> None:
    (page,) = ui_get(store["path"], "/runstore/run_list")
    html = page.text
    assert "<h1>Runs</h1>" in html
    assert "CREATE VIEW" not in html and "(view)" not in html
    # The database page stays one click away, in the actions menu.
    assert 'href="/runstore?_tables=1"' in html
    # Other tables and views keep Datasette's page.
    (records, runs) = ui_get(store["path"], "/runstore/run_records", "/runstore/runs")
    assert "CREATE TABLE" in records.text and "<h1>Runs</h1>" not in records.text
    assert "CREATE VIEW" in runs.text and "<h1>Runs</h1>" not in runs.text


def test_a_store_created_after_startup_gets_the_run_list_title(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On 1.0 the title lives in the metadata tables: set when the store is found,
    not only for stores found at startup."""
    from datasette_plugins.runstore_ui import detect

    monkeypatch.setattr(detect, "_RECHECK_S", 0.0)
    path = tmp_path / "runstore.db"
    sqlite3.connect(path).execute("CREATE TABLE x (a)").connection.close()

    async def go() -> list[Any]:
        ds = Datasette([str(path)])
        await ds.invoke_startup()
        _store.connect(path).close()  # now a store
        return [await ds.client.get("/runstore/run_list") for _ in range(2)]

    _, page = asyncio.run(go())
    assert page.status_code == 200 and "<h1>Runs</h1>" in page.text


def test_database_page_of_a_store_redirects_to_its_run_list(store: dict[str, Any]) -> None:
    db, home, head = ui_get(store["path"], "/runstore", "/", "/runstore")
    assert db.status_code == 302 and db.headers["location"] == "/runstore/run_list"
    assert home.status_code == 302 and home.headers["location"] == "/runstore/run_list"
    (head,) = ui_get(store["path"], "/runstore", method="head")
    assert head.status_code == 302 and head.headers["location"] == "/runstore/run_list"
    tables, as_json, query, run_list = ui_get(
        store["path"], "/runstore?_tables=1", "/runstore.json", "/runstore?sql=select+1",
        "/runstore/run_list")
    assert tables.status_code == 200 and "best_run_per_project" in tables.text
    assert as_json.status_code == 200 and as_json.json()["database"] == "runstore"
    # A query keeps its page (1.0 moves it to /-/query; never to the run list).
    assert query.status_code in (200, 302)
    assert "run_list" not in query.headers.get("location", "")
    assert run_list.status_code == 200


def test_redirects_follow_base_url(store: dict[str, Any]) -> None:
    db, home = ui_get(store["path"], "/runstore", "/", settings={"base_url": "/prefix/"})
    assert db.status_code == 302 and db.headers["location"] == "/prefix/runstore/run_list"
    assert home.headers["location"] == "/prefix/runstore/run_list"


def test_other_databases_are_not_redirected(store: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE run_list (x)").connection.close()
    (alone,) = ui_get(other, "/other")
    assert alone.status_code == 200
    index, other_db, store_db = ui_get([store["path"], other], "/", "/other", "/runstore")
    # Two databases: / stays Datasette's index; only the store's page redirects.
    assert index.status_code == 200 and other_db.status_code == 200
    assert store_db.status_code == 302
    (page,) = ui_get(other, "/other/run_list")
    assert "<h1>Runs</h1>" not in page.text and "runstore-" not in page.text
