"""The workspace's runs table (issue 13): a view per project whose config and summary keys
are columns (`runs/<project>`), kept current as keys appear, searched with FTS5 set up by
sqlite-utils, served by Datasette's own table page. Real stores, a real Datasette app, and
one real headless Chromium on a real server."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port
from runstore import _store
from ui_helpers import add_run, ui_get

pytestmark = pytest.mark.ui  # builds a Datasette or starts a server

EVIL = "<script>alert(1)</script>"
HOSTILE_PROJECT = 'ev"il] <script>'
VIEW = "/runstore/runs~2Fmnist"


def _rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:500]
    data = response.json()
    rows = data["rows"]  # objects on 1.0, arrays (beside "columns") on 0.65
    return [row if isinstance(row, dict) else dict(zip(data["columns"], row, strict=True))
            for row in rows]


def _names(response: Any) -> list[str]:
    return [row["name"] for row in _rows(response)]


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    add_run(conn, "mnist", "a", "alpha", state="finished", tags=["baseline"],
            config={"optimizer": {"name": "adamw", "lr": 1e-4}, "batch": 32},
            summary={"val/acc": {"max": 0.91, "min": 0.2}, "loss": 0.3},
            notes="# Wide net\nMore **markdown** here", runtime=3723.0)
    add_run(conn, "mnist", "b", "beta", state="finished", tags=["sweep"],
            config={"optimizer": {"name": "sgd", "lr": 1e-2}, "batch": 64},
            summary={"val/acc": {"max": 0.95, "min": 0.3}, "loss": 0.2}, notes="plain")
    # 10 > 9.5 numerically, not as text: the sort must be numeric.
    add_run(conn, "mnist", "c", "gamma", state="failed",
            config={"optimizer": {"name": "adamw", "lr": 5e-3}, "batch": 128},
            summary={"val/acc": {"max": 0.5}, "loss": 10})
    add_run(conn, "mnist", "d", "delta", state="finished",
            config={"optimizer": {"name": "adamw", "lr": 2e-4}, "batch": 16},
            summary={"val/acc": {"max": 0.1}, "loss": 9.5})
    add_run(conn, "other", "e", "elsewhere", config={"optimizer": {"name": "adamw"}})
    conn.close()
    return path


def test_sort_by_a_summary_metric_is_numeric(store: Path) -> None:
    acc, loss = ui_get(store, f"{VIEW}.json?_sort_desc=summary.val/acc.max",
                       f"{VIEW}.json?_sort_desc=summary.loss")
    assert _names(acc) == ["beta", "alpha", "gamma", "delta"]
    assert _names(loss) == ["gamma", "delta", "alpha", "beta"]  # 10 > 9.5 > 0.3 > 0.2
    assert [r["summary.val/acc.max"] for r in _rows(acc)] == [0.95, 0.91, 0.5, 0.1]


def test_filter_by_a_config_value_and_a_range(store: Path) -> None:
    both, exact, range_ = ui_get(
        store, f"{VIEW}.json?config.optimizer.name__exact=adamw&config.optimizer.lr__lt=0.001",
        f"{VIEW}.json?config.optimizer.name=sgd",
        f"{VIEW}.json?config.batch__gte=32&config.batch__lte=64")
    assert sorted(_names(both)) == ["alpha", "delta"]
    assert _names(exact) == ["beta"]
    assert sorted(_names(range_)) == ["alpha", "beta"]


def test_search_names_notes_tags_and_config_values(store: Path) -> None:
    name, notes, tag, config, listed = ui_get(
        store, f"{VIEW}.json?_search=gamma", f"{VIEW}.json?_search=markdown",
        f"{VIEW}.json?_search=sweep", f"{VIEW}.json?_search=sgd",
        "/runstore/run_list.json?_search=adamw&_sort=name")
    assert _names(name) == ["gamma"]
    assert _names(notes) == ["alpha"]
    assert _names(tag) == ["beta"]
    assert _names(config) == ["beta"]
    assert _names(listed) == ["alpha", "delta", "elsewhere", "gamma"]  # every project


def test_search_follows_edits(store: Path) -> None:
    conn = _store.connect(store)
    key = _store.find_run_key(conn, "me", "mnist", "d")
    _store.update_run(conn, key, {"notes": "zanzibar", "heartbeat_at": "2024-05-01T13:00:00"})
    conn.close()
    (found,) = ui_get(store, f"{VIEW}.json?_search=zanzibar")
    assert _names(found) == ["delta"]


def test_workspace_redirects_to_the_view_keeping_the_filter(store: Path) -> None:
    moved, missing, unnamed = ui_get(
        store, "/runstore/-/runstore/workspace?project=mnist&config.batch__gt=20&_search=a",
        "/runstore/-/runstore/workspace?project=nope", "/runstore/-/runstore/workspace")
    assert moved.status_code == 302
    target = urllib.parse.urlsplit(moved.headers["location"])
    assert target.path == VIEW
    assert urllib.parse.parse_qs(target.query) == {"config.batch__gt": ["20"], "_search": ["a"]}
    assert missing.status_code == 404 and unnamed.status_code == 400


def test_run_list_links_each_project_workspace(store: Path) -> None:
    (page,) = ui_get(store, "/runstore/run_list")
    assert "/runstore/-/runstore/workspace?project=mnist" in page.text
    assert "/runstore/-/runstore/workspace?project=other" in page.text
    # each run's project cell links there too
    assert re.search(r'<a class="runstore-workspace-link" href="/runstore/-/runstore/'
                     r'workspace\?project=mnist"[^>]*>mnist</a>', page.text)


def test_the_view_follows_a_new_config_key(store: Path) -> None:
    (before,) = ui_get(store, f"{VIEW}.json")
    assert "config.warmup" not in _rows(before)[0]
    conn = _store.connect(store)
    add_run(conn, "mnist", "f", "phi", config={"warmup": 500, "optimizer": {"lr": "high"}})
    conn.close()
    after, filtered = ui_get(store, f"{VIEW}.json", f"{VIEW}.json?config.warmup__gt=100")
    assert "config.warmup" in _rows(after)[0]
    assert _names(filtered) == ["phi"]
    # a text value makes lr a text column: still sorted, numbers before text
    (lr,) = ui_get(store, f"{VIEW}.json?_sort=config.optimizer.lr")
    assert [r["config.optimizer.lr"] for r in _rows(lr)] == [1e-4, 2e-4, 5e-3, 1e-2, "high"]


def test_the_store_rebuilds_only_stale_views(store: Path) -> None:
    conn = _store.connect(store)
    assert sorted(_store.refresh_workspace_views(conn)) == ["runs/mnist", "runs/other"]
    assert _store.refresh_workspace_views(conn) == []
    add_run(conn, "other", "g", "gee", summary={"new/metric": 1.5})
    assert _store.stale_projects(conn) == ["other"]
    assert _store.refresh_workspace_views(conn) == ["runs/other"]
    columns = [r[1] for r in conn.execute('PRAGMA table_info("runs/other")')]
    assert "summary.new/metric" in columns
    conn.close()


def test_hostile_keys_and_project_names_are_quoted_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    add_run(conn, HOSTILE_PROJECT, "x", EVIL, notes=EVIL, tags=[EVIL],
            config={'a"b': 1, "]": 2, "x'); DROP TABLE run_records; --": 3, EVIL: EVIL,
                    "n": float("nan"), "nested": {'q"': {"r": 4}}},
            summary={"val/acc": {"max": 0.5}, "img": {"_type": "image-file", "width": 2}})
    add_run(conn, HOSTILE_PROJECT, "y", "plain", config={'a"b': 5, "n": 1.5, "]": 1})
    assert _store.refresh_workspace_views(conn) == ['runs/ev"il%5D <script>']
    conn.close()
    view = "/runstore/" + urllib.parse.quote(
        "runs~2F" + HOSTILE_PROJECT.replace('"', "~22").replace("]", "~255D")
        .replace(" ", "~20").replace("<", "~3C").replace(">", "~3E"))
    data, page, sorted_ = ui_get(path, view + ".json?_sort=name", view,
                                 view + ".json?_sort_desc=config.a%22b")
    rows = _rows(data)
    assert rows[0]["config.a\"b"] == 1 and rows[0]["config.]"] == 2
    assert rows[0]["config.x'); DROP TABLE run_records; --"] == 3
    assert rows[0]["config." + EVIL] == EVIL
    assert rows[0]["config.n"] is None and rows[1]["config.n"] == 1.5  # NaN is not 0
    assert rows[0]["config.nested.q\".r"] == 4
    assert rows[0]["summary.img"].startswith("{")  # media stay one column
    assert [r["name"] for r in _rows(sorted_)] == ["plain", EVIL]
    assert page.status_code == 200
    assert EVIL not in page.text and "&lt;script&gt;" in page.text
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM run_records").fetchone()[0] == 2
    conn.close()


def test_cells_are_compact(store: Path) -> None:
    (page,) = ui_get(store, f"{VIEW}?_sort=name")
    html = page.text
    assert re.search(r'<span class="runstore-note" title="# Wide net\nMore \*\*markdown\*\* '
                     r'here">Wide net\u2026</span>', html)
    assert ">1h 02m<" in html
    assert re.search(r'<time class="runstore-when" datetime="2024-05-01T12:00:00\+00:00"'
                     r'[^>]*>[^<]* ago</time>', html) or "2024-05-01" in html
    assert "runstore-state-finished" in html
    assert "runstore_columns.js" in html


# --- the browser: sort, filter, search, the column chooser ------------------------------

CHROMIUM = os.environ.get("RUNSTORE_TEST_CHROMIUM", "/usr/bin/chromium")


def _browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"needs the Python package playwright ({exc})")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}")
    return sync_playwright


def _serve(path: Path, port: int) -> subprocess.Popen:
    datasette = Path(sys.executable).with_name("datasette")
    proc = subprocess.Popen([str(datasette), str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("datasette did not start")


def test_browser_sort_filter_search_and_column_chooser(store: Path, tmp_path: Path) -> None:
    sync_playwright = _browser()
    port = free_port()
    proc = _serve(store, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})

            def names() -> list[str]:
                return page.eval_on_selector_all(
                    "table.rows-and-columns td.col-name a.runstore-run-link",
                    "els => els.map(e => e.textContent)")

            page.goto(f"{base}/runstore/-/runstore/workspace?project=mnist"
                      "&_sort_desc=summary.val/acc.max")
            assert names() == ["beta", "alpha", "gamma", "delta"]
            # Datasette's own filter form: config value and a range, in the URL
            page.goto(f"{base}{VIEW}?config.optimizer.name__exact=adamw"
                      "&config.optimizer.lr__lt=0.001")
            assert sorted(names()) == ["alpha", "delta"]
            page.goto(f"{base}{VIEW}")
            page.fill("input#_search", "sgd")
            page.press("input#_search", "Enter")
            page.wait_for_url(re.compile(r"_search=sgd"))
            assert names() == ["beta"]
            # the column chooser: run_key hidden by default; hide a summary column, reload
            page.goto(f"{base}{VIEW}")
            assert not page.is_visible("th[data-column='run_key']")
            assert page.is_visible("th[data-column='summary.loss']")
            page.click("details.runstore-columns summary")
            page.uncheck("details.runstore-columns input[value='summary.loss']")
            assert not page.is_visible("th[data-column='summary.loss']")
            page.reload()
            assert not page.is_visible("th[data-column='summary.loss']")
            assert page.is_visible("th[data-column='summary.val/acc.max']")
            width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(tmp_path / "runs-table.png"), full_page=True)
            browser.close()
        assert width <= 1440 + 400, width  # notes and names no longer stretch the page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_csv_export_has_the_key_columns(store: Path) -> None:
    (csv,) = ui_get(store, f"{VIEW}.csv?_sort=name")
    header = csv.text.splitlines()[0]
    assert "config.optimizer.lr" in header and "summary.val/acc.max" in header


def test_a_number_filters_by_equality_too(store: Path) -> None:
    # Datasette binds '64' as text; the column's NUMERIC affinity makes it the number 64
    (exact,) = ui_get(store, f"{VIEW}.json?config.batch=64")
    assert _names(exact) == ["beta"]


def test_a_read_only_store_without_views_opens_the_run_list(tmp_path: Path) -> None:
    import asyncio

    from datasette.app import Datasette

    path = tmp_path / "runstore.db"
    conn = _store.connect(path)
    add_run(conn, "mnist", "a", "alpha")
    conn.close()

    async def go() -> Any:
        ds = Datasette(immutables=[str(path)])  # as `runstore ui --read-only` serves it
        await ds.invoke_startup()
        return await ds.client.get("/runstore/-/runstore/workspace?project=mnist&_search=x")

    moved = asyncio.run(go())
    assert moved.status_code == 302
    target = urllib.parse.urlsplit(moved.headers["location"])
    assert target.path == "/runstore/run_list"
    assert urllib.parse.parse_qs(target.query) == {"project": ["mnist"], "_search": ["x"]}


def test_the_benchmark_runs_at_a_tiny_size() -> None:
    from helpers import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import workspace_table
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    rows = workspace_table.measure(runs=60, repeats=1)
    assert len(rows) == 19 and all(value > 0 for _, value, _, _ in rows)
