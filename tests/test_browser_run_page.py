"""The run page and chart correctness in a real browser (issue 13), on a real `runstore
ui` with headless Chromium (the set-up of test_browser.py):

- the first chart is above the fold at 1440x900; charts fill the width, 2-4 a row;
- drag-to-zoom redraws at once with the zoomed data: the points drawn match the caption;
- y tick labels tell ticks apart at 1e-4 and 1e6 ranges and fit their axis;
- the charts of a page share a crosshair (uPlot cursor sync), a tooltip follows the cursor;
- the legend reads last/min/max when not hovered (not `--`);
- a failed run shows its last stderr lines at the top (escaped), a crashed run its last
  heartbeat; lineage markers at the fork and rewind steps; a rewind's archived tail drawn
  faintly;
- unrewind: a real form POST with Datasette's CSRF token, then the store shows the rewind
  undone.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import WAIT_MS, _browser, _Server, browser_tools  # noqa: F401

import runstore
from helpers import free_port

pytestmark = pytest.mark.ui

EVIL = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"
READY_JS = """(keys) => keys.every((k) => {
  const f = document.querySelector(`figure.runstore-chart[data-key="${k}"]`);
  return f && f.runstoreChart && f.runstoreChart.u && f.runstoreChart.loaded;
})"""


def _make_store(store_dir: Path) -> dict[str, Any]:
    info: dict[str, Any] = {}
    with runstore.init(dir=store_dir, project="p", id="zoomy", name="zoomy",
                       settings={"sync_writes": False}) as run:
        for step in range(20_000):
            row = {"loss": math.sin(step / 700) + 0.1 * ((step * 7919) % 13) / 13}
            if step % 10 == 0:
                row["tiny"] = 1.5e-4 + 3e-4 * (step / 20_000)
                row["big"] = 1_000_000 + 612_000 * (step / 20_000)
            run.log(row, step=step)
    with runstore.init(dir=store_dir, project="p", id="src", name=EVIL,
                       notes="# Heading\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                       settings={"sync_writes": False}) as run:
        for step in range(1000):
            run.log({"loss": 1 / (1 + step)}, step=step)
    with runstore.init(dir=store_dir, project="p", id="src", resume_from="src?_step=600",
                       settings={"sync_writes": False}) as run:
        for step in range(601, 800):
            run.log({"loss": 0.5}, step=step)
    with runstore.init(dir=store_dir, project="p", id="kid", name="kid",
                       fork_from="src?_step=300", settings={"sync_writes": False}) as run:
        for step in range(301, 400):
            run.log({"loss": 0.3}, step=step)
    with runstore.init(dir=store_dir, project="p", id="bad", name="bad",
                       settings={"sync_writes": False}) as run:
        run.log({"loss": 1.0})
        run.finish(exit_code=1)
    with runstore.init(dir=store_dir, project="p", id="gone", name="gone",
                       settings={"sync_writes": False}) as run:
        run.log({"loss": 1.0})
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        keys = dict(conn.execute("SELECT id, run_key FROM runs").fetchall())
        info.update(keys)
        lines = [("stdout", "epoch 1"), ("stderr", "Traceback (most recent call last):"),
                 ("stderr", '  File "train.py", line 3, in <module>'),
                 ("stderr", "ValueError: " + EVIL)]
        conn.executemany(
            "INSERT INTO console_lines (run_key, seq, stream, at, line) VALUES (?, ?, ?, ?, ?)",
            [(keys["bad"], i, stream, 1.7e9 + i, line) for i, (stream, line) in enumerate(lines)])
        conn.execute("UPDATE runs SET state = 'crashed', heartbeat_at = ? WHERE run_key = ?",
                     ("2026-01-02T03:04:05+00:00", keys["gone"]))
        conn.commit()
    finally:
        conn.close()
    return info


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    store_dir = tmp_path / "store"
    runs = _make_store(store_dir)
    port = free_port()
    proc = _Server(store_dir, port)
    try:
        login = proc.login_url()
        proc.wait_listening(port)
        yield {"login": login, "base": f"http://127.0.0.1:{port}", "runs": runs,
               "db": store_dir / "runstore.db"}
    finally:
        proc.stop()


def _run_url(server: dict[str, Any], run_id: str) -> str:
    return f"{server['base']}/runstore/-/runstore/run/{server['runs'][run_id]}"


def _wait_charts(page: Any, keys: list[str]) -> None:
    page.wait_for_function(READY_JS, arg=keys, timeout=WAIT_MS)


def test_run_page_charts_zoom_ticks_sync(browser_tools: tuple[Any, str],  # noqa: F811
                                         server: dict[str, Any], tmp_path: Path) -> None:
    sync_playwright, executable = browser_tools
    with _browser(sync_playwright, executable, tmp_path, 900) as (context, page):
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(server["login"])
        page.goto(_run_url(server, "zoomy"))
        _wait_charts(page, ["loss", "tiny", "big"])
        page.screenshot(path=str(tmp_path / "run-page.png"))

        # Above the fold, and a full-width grid of 2-4 a row.
        layout = page.evaluate("""() => {
          const figs = Array.from(document.querySelectorAll("figure.runstore-chart"));
          const top = figs[0].querySelector("canvas").getBoundingClientRect();
          const rows = new Set(figs.map((f) => Math.round(f.getBoundingClientRect().top)));
          const grid = document.querySelector(".runstore-charts").getBoundingClientRect();
          return {bottom: top.bottom, perRow: figs.length / rows.size, gridWidth: grid.width,
                  page: document.documentElement.clientWidth};
        }""")
        assert layout["bottom"] <= 900, layout
        assert 2 <= layout["perRow"] <= 4, layout
        assert layout["gridWidth"] > 0.85 * layout["page"], layout

        # Tick labels at 1e-4 and 1e6: distinct, not 0/clipped, and they fit the axis.
        ticks = page.evaluate("""() => {
          const out = {};
          for (const key of ["tiny", "big"]) {
            const fig = document.querySelector(`figure.runstore-chart[data-key="${key}"]`);
            const u = fig.runstoreChart.u, axis = u.axes[1];
            const labels = axis._values || [];
            u.ctx.save(); u.ctx.font = axis.font[0];
            const widest = Math.max(...labels.map((t) => u.ctx.measureText(t).width))
              / (window.devicePixelRatio || 1);
            u.ctx.restore();
            out[key] = {labels: labels, widest: widest, size: axis._size};
          }
          return out;
        }""")
        for key, found in ticks.items():
            labels = found["labels"]
            assert len(labels) >= 3 and len(set(labels)) == len(labels), (key, found)
            assert found["widest"] < found["size"], (key, found)
        assert all("e-4" in t or t == "0" for t in ticks["tiny"]["labels"]), ticks
        assert all(t.replace(",", "").isdigit() and len(t.replace(",", "")) == 7
                   for t in ticks["big"]["labels"]), ticks

        # The legend says last/min/max when not hovered, not "--".
        legend = page.evaluate("""() => Array.from(document.querySelectorAll(
          'figure.runstore-chart[data-key="loss"] .u-legend .u-series .u-value'))
          .map((e) => e.textContent)""")
        assert legend[1].startswith("last ") and "min" in legend[1], legend

        # Crosshair sync and tooltip: hover "loss", the others' cursors follow.
        box = page.locator('figure.runstore-chart[data-key="loss"] .u-over').bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(200)
        sync = page.evaluate("""() => ["loss", "tiny", "big"].map((k) => {
          const fig = document.querySelector(`figure.runstore-chart[data-key="${k}"]`);
          const u = fig.runstoreChart.u, tip = fig.querySelector(".runstore-tooltip");
          return {idx: u.cursor.idx, left: u.cursor.left,
                  x: u.cursor.idx == null ? null : u.data[0][u.cursor.idx],
                  tip: tip && tip.style.display !== "none" ? tip.textContent : null};
        })""")
        assert all(s["idx"] is not None and s["left"] >= 0 for s in sync), sync
        xs = [s["x"] for s in sync]
        assert max(xs) - min(xs) <= 20_000 / 100, sync  # the same step, to a pixel or so
        assert sync[0]["tip"] and sync[0]["tip"].startswith("step "), sync
        assert sync[1]["tip"] is None and sync[2]["tip"] is None, sync  # only where hovered

        # Zoom by dragging: the points drawn are the zoomed points, at once.
        before = page.evaluate(
            "() => document.querySelector('figure.runstore-chart[data-key=\"loss\"]"
            " .runstore-points').textContent")
        assert "downsampled" in before
        x0 = box["x"] + box["width"] * 0.40
        x1 = box["x"] + box["width"] * 0.46
        page.mouse.move(x0, box["y"] + 20)
        page.mouse.down()
        page.mouse.move(x1, box["y"] + 30, steps=5)
        page.mouse.up()
        page.wait_for_function("""() => {
          const c = document.querySelector('figure.runstore-chart[data-key="loss"]').runstoreChart;
          return c.zoomed;
        }""", timeout=WAIT_MS)
        zoom = page.evaluate("""() => {
          const fig = document.querySelector('figure.runstore-chart[data-key="loss"]');
          const c = fig.runstoreChart, u = c.u, s = u.scales.x, xs = u.data[0];
          let inRange = 0;
          for (const x of xs) { if (x >= s.min && x <= s.max) { inRange++; } }
          const idxs = u.series[1].idxs;
          return {caption: fig.querySelector(".runstore-points").textContent,
                  drawn: idxs[1] - idxs[0] + 1, inRange: inRange, total: xs.length,
                  min: s.min, max: s.max};
        }""")
        shown = int(zoom["caption"].split(" ")[2].replace(",", ""))
        assert "downsampled" not in zoom["caption"], zoom
        assert shown == zoom["total"] and shown > 500, zoom
        assert zoom["drawn"] >= zoom["inRange"] >= shown - 2, zoom


def test_failed_crashed_lineage_unrewind(browser_tools: tuple[Any, str],  # noqa: F811
                                         server: dict[str, Any], tmp_path: Path) -> None:
    sync_playwright, executable = browser_tools
    with _browser(sync_playwright, executable, tmp_path, 900) as (context, page):
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(server["login"])

        # A failed run: its error at the top, every value escaped.
        page.goto(_run_url(server, "bad"))
        page.screenshot(path=str(tmp_path / "failed-run.png"))
        error = page.locator(".runstore-error")
        assert error.is_visible()
        text = error.text_content() or ""
        assert "failed" in text and "ValueError: " + EVIL in text, text
        first_chart = page.locator("figure.runstore-chart").first.bounding_box()
        assert error.bounding_box()["y"] < first_chart["y"]
        assert page.evaluate("() => window.__pwned") is None

        page.goto(_run_url(server, "gone"))
        crashed = page.locator(".runstore-crashed").text_content() or ""
        assert "crashed" in crashed and "Last heartbeat" in crashed, crashed
        # Shown as local time, the stored ISO text in its title.
        beat = page.locator(".runstore-crashed time")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", beat.text_content() or "")
        assert (beat.get_attribute("title") or "").startswith("2026-01-02T03:04:05")

        # Lineage markers: the rewind on src, the fork on kid (and on src).
        page.goto(_run_url(server, "src"))
        _wait_charts(page, ["loss"])
        page.screenshot(path=str(tmp_path / "lineage.png"), full_page=True)
        assert page.title().startswith(EVIL)
        assert page.evaluate("() => window.__pwned") is None
        markers = page.get_attribute('figure.runstore-chart[data-key="loss"]', "data-markers")
        assert set(markers.split(",")) == {"300", "600"}, markers
        # The rewind's archived tail (steps 601..999), drawn faintly beside the live line.
        archived = page.evaluate("""() => {
          const u = document.querySelector('figure.runstore-chart[data-key="loss"]')
            .runstoreChart.u;
          const i = u.series.findIndex((s) => s.label === "loss (archived)");
          if (i < 0) { return null; }
          const xs = u.data[0].filter((x, j) => u.data[i][j] != null);
          return {n: xs.length, first: xs[0], last: xs[xs.length - 1]};
        }""")
        assert archived == {"n": 399, "first": 601, "last": 999}, archived
        notes = page.locator(".runstore-notes")
        assert notes.locator("h3").text_content() == "Heading"
        assert notes.locator("table td").count() == 2
        assert page.evaluate("""() => getComputedStyle(
          document.querySelector('.runstore-notes li')).listStyleType""") == "disc"
        page.goto(_run_url(server, "kid"))
        _wait_charts(page, ["loss"])
        assert page.get_attribute('figure.runstore-chart[data-key="loss"]',
                                  "data-markers") == "300"

        # Unrewind: the button posts the form with its CSRF token.
        page.goto(_run_url(server, "src"))
        with page.expect_navigation():
            page.locator(".runstore-unrewind button").click()
        assert "Undid the newest rewind" in page.content()
        # What was logged since the rewind is archived in turn: a rewind to undo again.
        assert "Rewound to step 600" in (page.locator(".runstore-rewound").text_content() or "")
    conn = sqlite3.connect(server["db"])
    try:
        rewinds = conn.execute(
            "SELECT step, undone_at FROM run_events WHERE relation = 'rewind' AND run_key = ?"
            " ORDER BY event_id", (server["runs"]["src"],)).fetchall()
        (last,) = conn.execute("SELECT max(step) FROM history WHERE run_key = ?",
                               (server["runs"]["src"],)).fetchone()
    finally:
        conn.close()
    assert rewinds[0][0] == 600 and rewinds[0][1] is not None, rewinds
    assert last == 999  # the archived tail is back
