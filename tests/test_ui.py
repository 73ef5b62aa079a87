"""The Datasette plugin and `runstore ui`: real stores, a real Datasette app, a real server."""

from __future__ import annotations

import ast
import html
import inspect
import math
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from helpers import REPO, free_port, start_ui, stop_group
from runstore import _store
from runstore._cli import main
from ui_helpers import add_points, add_run, run_url, ui_get

STATIC = REPO / "datasette_plugins" / "runstore_ui" / "static"

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

EVIL = "<script>alert(1)</script>"
SPIKE_STEP = 54_321
BIG = 100_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with a small run (evil name, tags, config, summary, three metrics)
    and a big run (100k points of one metric with one spike)."""
    path = tmp_path_factory.mktemp("store") / "runstore.db"
    conn = _store.connect(path)
    small = add_run(
        conn, "mnist", "small1", EVIL, state="finished", tags=["baseline", "<b>bold</b>"],
        config={"lr": 0.001, "optimizer": {"name": "adam"}, "batch_size": 64},
        summary={"train/loss": 0.25, "val/acc": 0.91, "epoch": 3},
        notes="first try\n<i>not italic</i>", runtime=3725.0, exit_code=0, host="laptop",
        program="train.py", git_commit="deadbeefcafe", git_branch="main", git_dirty=1,
        git_remote="git@example.com:me/repo.git",
    )
    add_points(conn, small, "train/loss", [(0, 1.0, None), (1, 0.5, None), (2, 0.25, None)])
    add_points(conn, small, "val/acc", [(0, 0.5, None), (2, math.inf, None), (3, 0.9, None)])
    add_points(conn, small, "note", [(0, None, '"text"')])
    # Running, with a fresh heartbeat: live, not crashed.
    big = add_run(conn, "mnist", "big1", "big run", created_at="2024-05-02T12:00:00+00:00",
                  heartbeat_at=datetime.now(timezone.utc).isoformat())
    values = [math.sin(i / 1000) for i in range(BIG)]
    values[SPIKE_STEP] = 1e9
    add_points(conn, big, "train/loss", [(i, v, None) for i, v in enumerate(values)])
    conn.close()
    return {"path": path, "small": small, "big": big}


def test_plugin_is_loaded_through_its_entry_point() -> None:
    from datasette.plugins import get_plugins

    assert "runstore" in {p["name"] for p in get_plugins()}


def test_plain_datasette_command_loads_the_plugin(store: dict[str, Any]) -> None:
    datasette = Path(sys.executable).with_name("datasette")
    if not datasette.exists():
        pytest.skip("no datasette script beside this Python")
    result = subprocess.run(
        [str(datasette), str(store["path"]), "--get", "/runstore/run_list"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert f'href="{run_url(store["big"])}">big run</a>' in result.stdout
    assert 'id="facet-project"' in result.stdout


def test_run_list_links_names_and_shows_states_tags_summary(store: dict[str, Any]) -> None:
    (response,) = ui_get(store["path"], "/runstore/run_list")
    assert response.status_code == 200
    html = response.text
    assert f'<a class="runstore-run-link" href="{run_url(store["big"])}">big run</a>' in html
    assert 'class="runstore-state runstore-state-finished">finished</span>' in html
    assert 'class="runstore-state runstore-state-running">running</span>' in html
    assert '<a class="runstore-tag" href="/runstore/run_list?tags__arraycontains=baseline">' in html
    assert '<span class="runstore-k">val/acc</span>=0.91' in html
    assert '<span class="runstore-runtime" title="3725.0 s">1h 02m 05s</span>' in html
    assert "/runstore/-/runstore/bundle.css?f=runstore.css&amp;" in html
    # metadata: facets and newest first
    for column in ("project", "state", "run_group", "job_type", "tags"):
        assert f'id="facet-{column}"' in html
    assert "sorted by created_at descending" in html
    assert html.index("big run") < html.index("&lt;script&gt;")


def test_runs_table_is_rendered_too(store: dict[str, Any]) -> None:
    (response,) = ui_get(store["path"], "/runstore/runs")
    assert response.status_code == 200
    assert f'href="{run_url(store["small"])}">&lt;script&gt;' in response.text


def test_run_page(store: dict[str, Any]) -> None:
    (response,) = ui_get(store["path"], run_url(store["small"]))
    assert response.status_code == 200
    html = response.text
    assert 'href="/runstore/run_list?entity=me&amp;project=mnist">me/mnist</a>' in html
    assert "<dt>git dirty</dt>\n  <dd>yes</dd>" in html
    for text in ("small1", "me/mnist", "1h 02m 05s", "laptop", "train.py", "deadbeefcafe",
                 "(dirty: uncommitted changes)", "main", "git@example.com:me/repo.git"):
        assert text in html
    assert "first try\n&lt;i&gt;not italic&lt;/i&gt;" in html  # notes: escaped plain text
    assert "<th>optimizer.name</th><td>adam</td>" in html  # config, dotted
    assert "<th>batch_size</th><td>64</td>" in html
    assert "<th>val/acc</th><td>0.91</td>" in html  # summary
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # tag chip, escaped
    for key in ("note", "train/loss", "val/acc"):
        assert f'<figure class="runstore-chart" data-key="{key}">' in html
    assert "<h3>train <span" in html and "<h3>val <span" in html  # grouped by prefix
    assert '<script type="application/json" id="runstore-page-data">' in html
    assert f'"metricUrl": "{run_url(store["small"])}/metric.json"' in html


def test_vendored_assets_are_served(store: dict[str, Any]) -> None:
    (page,) = ui_get(store["path"], run_url(store["small"]))
    urls = [
        "/-/static-plugins/runstore/uPlot-1.6.32.iife.min.js",
        "/-/static-plugins/runstore/uPlot-1.6.32.min.css",
        "/-/static-plugins/runstore/runstore_run.js",
    ]
    for url in urls:
        assert url in page.text
    (bundled,) = re.findall(r'href="(/runstore/-/runstore/bundle\.css\?[^"]+)"', page.text)
    responses = ui_get(store["path"], *urls, html.unescape(bundled))
    assert [r.status_code for r in responses] == [200] * (len(urls) + 1)
    stylesheet = (STATIC / "runstore.css").read_text()
    assert responses[-1].text.startswith(stylesheet)
    assert "uPlot" in responses[0].text
    # No CDN: the page loads scripts, styles and images from its own origin only, and
    # our script fetches nothing absolute.
    loads = re.findall(r'<(?:script|img|iframe|source)\b[^>]*\ssrc="([^"]*)"', page.text)
    loads += re.findall(r'<link\b[^>]*\shref="([^"]*)"', page.text)
    assert loads and all(url.startswith("/") and not url.startswith("//") for url in loads)
    assert "http://" not in responses[2].text and "https://" not in responses[2].text


def test_a_bundle_joins_the_named_static_files_in_order(store: dict[str, Any]) -> None:
    names = ["runstore_time.js", "uPlot-1.6.32.iife.min.js", "runstore_charts.js"]
    query = "&".join(f"f={n}" for n in names)
    good, wrong_v, unknown, escape, mixed, empty = ui_get(
        store["path"],
        f"/runstore/-/runstore/bundle.js?{query}",
        f"/runstore/-/runstore/bundle.js?{query}&v=0000",
        "/runstore/-/runstore/bundle.js?f=nope.js",
        "/runstore/-/runstore/bundle.js?f=../__init__.py",
        "/runstore/-/runstore/bundle.css?f=runstore_time.js",
        "/runstore/-/runstore/bundle.js")
    assert good.status_code == 200 and good.headers["content-type"].startswith("text/javascript")
    assert good.text == "\n;\n".join((STATIC / n).read_text() for n in names)
    assert good.headers["cache-control"] == "no-cache"  # no digest given
    assert wrong_v.headers["cache-control"] == "no-cache"
    for bad in (unknown, escape, mixed, empty):
        assert bad.status_code == 400
    page = ui_get(store["path"], "/runstore/runs")[0].text
    (url,) = re.findall(r'src="(/runstore/-/runstore/bundle\.js\?[^"]+)"', page)
    (served,) = ui_get(store["path"], html.unescape(url))
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "runstore_pick.js" in url and "runstore_workspace.js" in url


def test_metric_json_small(store: dict[str, Any]) -> None:
    base = run_url(store["small"]) + "/metric.json?key="
    loss, acc, note, missing = ui_get(
        store["path"], base + "train/loss", base + "val/acc", base + "note", base + "nope"
    )
    assert loss.status_code == 200
    assert loss.json() == {
        "key": "train/loss", "steps": [0, 1, 2], "values": [1.0, 0.5, 0.25],
        "total": 3, "downsampled": False,
    }
    # Infinity is not a chart point (nor valid JSON); strings are not numeric.
    assert (acc.json()["steps"], acc.json()["values"]) == ([0, 3], [0.5, 0.9])
    assert note.json()["steps"] == [] and missing.json()["steps"] == []


def test_metric_json_downsamples_and_keeps_the_spike(store: dict[str, Any]) -> None:
    url = run_url(store["big"]) + "/metric.json?key=train/loss"
    full, few, zoomed = ui_get(
        store["path"], url, url + "&points=400", url + "&min_step=1000&max_step=1999"
    )
    data = full.json()
    assert data["downsampled"] is True and data["total"] == BIG
    assert 1000 <= len(data["steps"]) <= 4000
    assert data["steps"] == sorted(set(data["steps"]))
    assert data["values"][data["steps"].index(SPIKE_STEP)] == 1e9
    assert min(data["values"]) == pytest.approx(-1.0, abs=1e-6)
    assert data["steps"][0] == 0 and data["steps"][-1] == BIG - 1
    assert len(few.json()["steps"]) <= 400 and 1e9 in few.json()["values"]
    exact = zoomed.json()
    assert exact["downsampled"] is False and exact["steps"] == list(range(1000, 2000))


def test_evil_name_is_escaped(store: dict[str, Any]) -> None:
    for url in ("/runstore/run_list", "/runstore/runs", run_url(store["small"])):
        (response,) = ui_get(store["path"], url)
        assert response.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
        assert EVIL not in response.text
        assert "<b>bold</b>" not in response.text and "<i>not italic</i>" not in response.text


def test_not_found_and_bad_requests(store: dict[str, Any]) -> None:
    responses = ui_get(
        store["path"],
        run_url(999),
        run_url(999) + "/metric.json?key=train/loss",
        run_url(store["small"]) + "/metric.json",
        run_url(store["small"]) + "/metric.json?key=x&min_step=abc",
        run_url(store["small"]) + "/metric.json?key=x&max_step=inf",
        "/nosuchdb/-/runstore/run/1",
        run_url(10**30),
    )
    assert [r.status_code for r in responses] == [404, 404, 400, 400, 400, 404, 404]
    (huge,) = ui_get(store["path"], run_url(store["small"]) + "/metric.json?key=train/loss"
                   "&min_step=-1e30&max_step=1e30")
    assert huge.json()["steps"] == [0, 1, 2]


def _not_ascii(number: int) -> str:
    """`number` in Arabic-Indic digits, which int(), str.isdigit() and \\d all accept."""
    return str(number).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def test_numbers_in_run_urls_are_ascii_digits_within_int64(store: dict[str, Any]) -> None:
    from datasette_plugins.runstore_ui.routes import RUN_PATH

    # Datasette redirects a path with "١" to its ~-encoding, but the route must not
    # take it as run 1 either way.
    assert re.match(RUN_PATH + "$", "/runstore/-/runstore/run/" + _not_ascii(1)) is None
    huge = run_url("9" * 5000)  # type: ignore[arg-type]
    metric = run_url(store["small"]) + "/metric.json?key=train/loss"
    responses = ui_get(
        store["path"], huge, huge + "/status.json", huge + "/metric.json?key=x",
        metric + "&min_step=" + _not_ascii(1), metric + "&max_step=" + _not_ascii(2),
        metric + "&points=" + _not_ascii(10), metric + "&min_step=1_0",
        metric + "&max_step=%201", metric + "&points=nan", metric + "&times=maybe",
        metric + "&times=" + _not_ascii(1),
    )
    assert [r.status_code for r in responses] == [404] * 3 + [400] * 8
    assert "digits 0-9" in responses[3].text and "times must be 1 or 0" in responses[9].text
    exact, times, plain = ui_get(store["path"], metric + "&min_step=1&max_step=1.9",
                               metric + "&times=TRUE", metric + "&times=0")
    assert exact.json()["steps"] == [1]
    assert "timestamps" in times.json() and "timestamps" not in plain.json()


def test_run_routes_respect_datasette_permissions(store: dict[str, Any]) -> None:
    private = {"databases": {"runstore": {"allow": {"id": "someone"}}}}
    responses = ui_get(
        store["path"], run_url(store["small"]),
        run_url(store["small"]) + "/metric.json?key=train/loss", metadata=private,
    )
    assert [r.status_code for r in responses] == [403, 403]
    assert "alert(1)" not in responses[0].text


def _first_await(function: Any) -> str:
    """The name of what `function` awaits first (its statements in order)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for statement in tree.body[0].body:
        awaits = sorted((node for node in ast.walk(statement) if isinstance(node, ast.Await)),
                        key=lambda node: (node.lineno, node.col_offset))
        if awaits:
            call = awaits[0].value
            assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            return call.func.id
    return ""


def test_every_route_checks_first_that_the_actor_may_view_the_store() -> None:
    from datasette_plugins.runstore_ui.routes import ROUTES

    assert len({view for _, view in ROUTES}) == len(ROUTES) >= 13
    from datasette_plugins.runstore_ui.security import run_to_change

    # A POST that changes a run checks through run_to_change, whose first await is the check.
    assert _first_await(run_to_change) == "store_and_key"
    first = {view.__name__: _first_await(view) for _, view in ROUTES}
    assert {name: how for name, how in first.items()
            if how not in ("store_db", "store_and_key", "run_to_change")} == {}


def test_every_route_refuses_an_actor_who_may_not_view_the_store(
        store: dict[str, Any]) -> None:
    from datasette_plugins.runstore_ui.routes import ROUTES

    def url(pattern: str) -> str:
        path = pattern.strip("^$").replace("\\.", ".")
        path = re.sub(r"\(\?P<database>[^)]*\)", "runstore", path)
        path = re.sub(r"\(\?P<run_key>[^)]*\)", str(store["small"]), path)
        path = re.sub(r"\(\?P<sweep_id>[^)]*\)", "nosweep", path)
        path = re.sub(r"\(\?P<kind>[^)]*\)", "js", path)
        return re.sub(r"\(\?P<sha256>[^)]*\)", "0" * 64, path) + "?key=train/loss&runs=1,2"

    urls = [url(pattern) for pattern, _ in ROUTES]
    private = {"databases": {"runstore": {"allow": {"id": "someone"}}}}
    statuses = {u: r.status_code for u, r in zip(
        urls, ui_get(store["path"], *urls, metadata=private), strict=True)}
    # The edit and unrewind routes answer only POST: a GET is refused before anything
    # is read.
    assert statuses == {u: 405 if re.search(r"/(edit|unrewind)\?", u) else 403 for u in urls}


def test_static_readme_lists_every_static_file() -> None:
    static = REPO / "datasette_plugins" / "runstore_ui" / "static"
    listed = set(re.findall(r"^\| `([^`]+)` \|", (static / "README.md").read_text(), re.M))
    assert listed == {p.name for p in static.iterdir() if p.name != "README.md"}


def test_plugin_leaves_other_databases_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE runs (run_key INTEGER PRIMARY KEY, name TEXT, state TEXT, tags TEXT)"
    )
    conn.execute("INSERT INTO runs VALUES (1, '<i>x</i>', 'finished', '[\"a\"]')")
    conn.commit()
    conn.close()
    table, run_page, metric = ui_get(
        path, "/other/runs", "/other/-/runstore/run/1", "/other/-/runstore/run/1/metric.json?key=a"
    )
    assert table.status_code == 200
    assert "runstore-" not in table.text and "static-plugins/runstore" not in table.text
    assert 'id="facet-state"' not in table.text
    assert "&lt;i&gt;x&lt;/i&gt;" in table.text
    assert run_page.status_code == 404 and metric.status_code == 404


def test_cli_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "ui" in result.output
    result = CliRunner().invoke(main, ["ui", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "--host" in result.output


def test_cli_ui_missing_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ui", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert str(tmp_path / "nothing" / "runstore.db") in result.output
    assert "runstore.init" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_ui_default_dir_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RUNSTORE_DIR", str(tmp_path / "from-env"))
    result = CliRunner().invoke(main, ["ui"])
    assert result.exit_code == 1
    assert str(tmp_path / "from-env" / "runstore.db") in result.output


def test_cli_ui_serves_on_loopback(store: dict[str, Any]) -> None:
    port = free_port()
    proc = start_ui(store["path"].parent, port)
    try:
        deadline = time.monotonic() + 30
        status, body = None, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    status, body = resp.status, resp.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert status == 200
        assert "runstore" in body
        url = f"http://127.0.0.1:{port}{run_url(store['small'])}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
    finally:
        stop_group(proc)


def test_run_page_shows_lineage_and_the_parent_config(tmp_path: Path) -> None:
    import runstore

    store_dir = tmp_path / "lineage"
    source = runstore.init(project="p", id="src", dir=store_dir, config={"lr": 0.1},
                           name="<b>source</b>")
    for i in range(5):
        source.log({"loss": float(i)})
    source.finish()
    runstore.init(project="p", id="kid", dir=store_dir, fork_from="src?_step=2",
                  config={"lr": 0.5}).finish()
    runstore.init(project="p", dir=store_dir, resume_from="src?_step=3").finish()
    conn = sqlite3.connect(store_dir / "runstore.db")
    keys = dict(conn.execute("SELECT id, run_key FROM runs").fetchall())
    conn.close()
    kid_page, src_page = ui_get(store_dir / "runstore.db", run_url(keys["kid"]),
                              run_url(keys["src"]))
    assert kid_page.status_code == 200 and src_page.status_code == 200
    kid = kid_page.text
    assert "Lineage" in kid and "Config of the parent" in kid
    assert f'href="{run_url(keys["src"])}"' in kid
    assert "&lt;b&gt;source&lt;/b&gt;" in kid and "<b>source</b>" not in kid
    parent_section = kid.split("Config of the parent", 1)[1].split("</section>", 1)[0]
    assert "0.1" in parent_section and "0.5" not in parent_section
    src = src_page.text
    assert "rewind" in src and "fork" in src and f'/run/{keys["kid"]}"' in src
    assert "Config of the parent" not in src
