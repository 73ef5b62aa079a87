"""A real browser on a real `runstore ui`: headless Chromium (Debian's `chromium`, driven by
Playwright through `executable_path`; never `playwright install`) on a free loopback port,
with every request to another host blocked and recorded, so a CDN reference fails the test.

Signs in with the one-time link, opens the run list, opens a run, waits for its uPlot charts
to draw (canvas pixels in each series' colour, one legend row per series), works the chart
settings (log scale, smoothing, x by relative and wall-clock time: every chart redraws, and
the settings survive a reload), adds a tag through the edit form and reads it back from the
store with sqlite3, then picks both runs on the list and checks the compare page overlays
them. Last, a run this test process is still logging to: live on the list and on its page,
whose chart gets the new points without a reload and whose badge turns to finished when
the run ends. Screenshots go to the test's tmp dir.

`make test` installs Debian's chromium when it is missing and it can (root with apt-get);
where no Chromium or Playwright can be had, the test skips and says which is missing.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runstore
from helpers import free_port, start_ui, stop_group

pytestmark = pytest.mark.ui  # builds a Datasette or starts `runstore ui`

CHROMIUM = os.environ.get("RUNSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCREENSHOT = Path("/tmp/runstore-browser-run.png")
SCREENSHOT_CONTROLS = Path("/tmp/runstore-browser-run-controls.png")
WAIT_MS = 10_000  # every browser wait is bounded by this
STEPS = 500

# Per chart: how many series, whether every series' colour was drawn on the canvas, and
# the figure's caption. Series colours come from the legend markers uPlot draws; a canvas
# pixel counts for a colour when each channel is within 40 of it (anti-aliased lines).
CHARTS_JS = r"""
() => Array.from(document.querySelectorAll("figure.runstore-chart")).map((fig) => {
  const canvas = fig.querySelector(".uplot canvas");
  const rows = Array.from(fig.querySelectorAll(".u-legend .u-series"));
  const out = {key: fig.dataset.key, caption: fig.querySelector("figcaption").textContent,
               drawn: !!canvas, series: Math.max(0, rows.length - 1), colors: [],
               width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0,
               painted: 0, error: (fig.querySelector(".runstore-empty") || {}).textContent};
  if (!canvas || !canvas.width || !canvas.height) { return out; }
  const rgb = rows.slice(1).map((row) => {
    const marker = row.querySelector(".u-marker");
    const m = getComputedStyle(marker).borderColor.match(/\d+/g) || [];
    return m.slice(0, 3).map(Number);
  });
  const counts = rgb.map(() => 0);
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) { continue; }
    out.painted++;
    rgb.forEach((c, j) => {
      if (Math.abs(d[i] - c[0]) <= 40 && Math.abs(d[i + 1] - c[1]) <= 40 &&
          Math.abs(d[i + 2] - c[2]) <= 40) { counts[j]++; }
    });
  }
  out.colors = rgb.map((c, j) => ({rgb: c, pixels: counts[j]}));
  return out;
})
"""

# True once every chart on the page has a canvas and `n` series in its legend.
CHARTS_READY_JS = r"""
(n) => {
  const figs = Array.from(document.querySelectorAll("figure.runstore-chart"));
  return figs.length > 0 && figs.every((fig) => {
    const canvas = fig.querySelector(".uplot canvas");
    return canvas && canvas.width > 0 && canvas.height > 0 &&
      fig.querySelectorAll(".u-legend .u-series").length === n + 1;
  });
}
"""


# A signature of a chart's canvas pixels (null before it drew): a redraw changes it.
CANVAS_SIG_JS = r"""
(key) => {
  const fig = Array.from(document.querySelectorAll("figure.runstore-chart"))
    .find((f) => f.dataset.key === key);
  const canvas = fig && fig.querySelector(".uplot canvas");
  if (!canvas || !canvas.width) { return null; }
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0, painted = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3]) { painted++; }
    h = (Math.imul(h, 31) + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) | 0;
  }
  return painted ? h + ":" + painted : null;
}
"""

# What runstore_charts.js drew for each chart: the y scale's distribution (3: log), the
# x scale's kind, the series (x first) and the first/last x values.
STATE_JS = r"""
() => window.runstoreChartsPage.charts.filter((c) => c.u).map((c) => ({
  key: c.key, distr: c.u.scales.y.distr, time: !!c.u.scales.x.time,
  series: c.u.series.map((s) => s.label), xLabel: c.u.axes[0].label,
  x0: c.u.data[0][0], x1: c.u.data[0][c.u.data[0].length - 1], points: c.u.data[0].length,
  raw: Array.from(c.u.data[1]), smoothed: c.u.data[2] ? Array.from(c.u.data[2]) : null,
}))
"""

# Sets the smoothing slider as a user dragging it would (an input event).
SMOOTH_JS = r"""
(value) => {
  const input = document.querySelector(".runstore-controls .runstore-smooth");
  input.value = String(value);
  input.dispatchEvent(new Event("input", {bubbles: true}));
}
"""


@pytest.fixture
def browser_tools() -> tuple[Any, str]:
    """Playwright's sync API and the Chromium binary, or a skip naming what is missing.
    Asked for before `server`, so a machine without them skips before any set-up."""
    return _playwright(), _chromium()


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"the browser test needs the Python package playwright ({exc}); it is in "
                    "the `test` extra: .venv/bin/pip install -e '.[test]'")
    return sync_playwright


def _chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"the browser test needs Debian's chromium at {CHROMIUM}, which is missing "
                    "(`make test` installs it with `apt-get install chromium` when run as "
                    "root; or set RUNSTORE_TEST_CHROMIUM to a Chromium binary)")
    return CHROMIUM


def _make_store(store_dir: Path) -> dict[str, dict[str, Any]]:
    """Two runs with `train/loss` and `val/acc`, logged through the public API."""
    runs = {}
    for name, lr, steps, tags in (("baseline-lr0.01", 0.01, STEPS, ["baseline"]),
                                  ("wide-lr0.003", 0.003, 300, ["wide"])):
        with runstore.init(dir=store_dir, project="mnist", name=name, tags=tags,
                           config={"lr": lr, "width": 64 if lr == 0.01 else 256},
                           settings={"sync_writes": False}) as run:
            for step in range(steps):
                row = {"train/loss": 2.0 / (1 + lr * 50 * step) + 0.02 * (step % 7)}
                if step % 5 == 0:
                    row["val/acc"] = 1 - 0.9 / (1 + lr * 20 * step)
                run.log(row, step=step)
            runs[name] = {"id": run.id}
    conn = sqlite3.connect(store_dir / "runstore.db")
    try:
        for info in runs.values():
            (info["run_key"],) = conn.execute(
                "SELECT run_key FROM runs WHERE id = ?", (info["id"],)).fetchone()
    finally:
        conn.close()
    return runs


class _Server:
    """`runstore ui DIR --port PORT` as a real child process in its own process group."""

    def __init__(self, store_dir: Path, port: int) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.proc = start_ui(store_dir, port)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:  # drains the pipe so the server never blocks on it
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def login_url(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            match = re.search(r"(http://\S+/-/auth-token\?token=[0-9a-f]+)", line)
            if match:
                return match.group(1)
        raise AssertionError("runstore ui printed no sign-in link:\n" + "".join(self.output))

    def wait_listening(self, port: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "runstore ui exited:\n" + "".join(self.output)
                assert time.monotonic() < deadline, "runstore ui is not listening"
                time.sleep(0.05)

    def stop(self) -> None:
        stop_group(self.proc)


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
               "db": store_dir / "runstore.db", "store_dir": store_dir}
    finally:
        proc.stop()


def _charts(page: Any, series: int) -> list[dict[str, Any]]:
    """Wait until every chart of the page drew `series` series, then describe them."""
    page.wait_for_function(CHARTS_READY_JS, arg=series, timeout=WAIT_MS)
    return page.evaluate(CHARTS_JS)


def _assert_drawn(charts: list[dict[str, Any]], keys: set[str], series: int) -> None:
    assert {c["key"] for c in charts} == keys, charts
    for chart in charts:
        assert chart["drawn"] and chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["series"] == series, chart
        assert not chart["error"], chart
        # Each series' line is on the canvas in its colour, beside axes and grid.
        for color in chart["colors"]:
            assert color["pixels"] >= 50, chart
        assert chart["painted"] > sum(c["pixels"] for c in chart["colors"]), chart


@contextlib.contextmanager
def _browser(sync_playwright: Any, executable: str, tmp_path: Path,
             height: int) -> Iterator[tuple[Any, Any]]:
    """(context, page) of a headless Chromium (a skip when it cannot start), every
    request to another host blocked and recorded; once closed, asserts that nothing
    was blocked and that the pages had no script error and no HTTP error response."""
    blocked: list[str] = []
    page_errors: list[str] = []
    bad_responses: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            route.continue_()
        elif parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    with sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=executable,
                headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": height},
                timeout=30_000,
            )
        except Exception as exc:  # any launch failure means "no browser"
            pytest.skip(f"could not launch {executable} through playwright: {exc}")
        try:
            context.set_default_timeout(WAIT_MS)
            context.route("**/*", guard)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)
            yield context, page
        finally:
            context.close()

    assert not blocked, f"the UI asked for non-loopback resources: {blocked}"
    assert not page_errors, page_errors
    assert not bad_responses, bad_responses


def test_browser_list_run_charts_edit_compare(browser_tools: tuple[Any, str],
                                              server: dict[str, Any], tmp_path: Path) -> None:
    sync_playwright, executable = browser_tools
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base, runs, db = server["base"], server["runs"], server["db"]
    with _browser(sync_playwright, executable, tmp_path, height=1400) as (context, page):
        # Sign in: the one-time link sets Datasette's ds_actor cookie for root.
        response = page.goto(server["login"])
        assert response is not None and response.ok, response
        assert "ds_actor" in {c["name"] for c in context.cookies()}

        # The run list: both runs, each a link to its page.
        page.goto(f"{base}/runstore/run_list")
        links = page.locator("a.runstore-run-link")
        links.first.wait_for()
        names = links.all_text_contents()
        assert set(runs) <= set(names), names
        page.screenshot(path=str(shots / "list.png"), full_page=True)

        # A run page: one chart per metric, each with its one series drawn.
        first = "baseline-lr0.01"
        links.filter(has_text=first).first.click()
        run_url = f"{base}/runstore/-/runstore/run/{runs[first]['run_key']}"
        page.wait_for_url(run_url, timeout=WAIT_MS)
        assert first in page.locator("h1").inner_text()
        charts = _charts(page, series=1)
        _assert_drawn(charts, {"train/loss", "val/acc"}, series=1)
        captions = {c["key"]: c["caption"] for c in charts}
        assert f"{STEPS} points" in captions["train/loss"], captions
        assert f"{STEPS // 5} points" in captions["val/acc"], captions
        page.screenshot(path=str(shots / "run.png"), full_page=True)
        shutil.copyfile(shots / "run.png", SCREENSHOT)
        _check_chart_settings(page, shots, runs[first]["run_key"])

        # Add a tag through the edit form; the store has it.
        page.goto(run_url + "#runstore-edit")
        form = page.locator("form.runstore-tag-add")
        form.wait_for(state="visible")
        form.locator("input[name=add_tag]").fill("from-browser")
        with page.expect_navigation(timeout=WAIT_MS):
            form.locator("button[type=submit]").click()
        page.locator(".runstore-edit-tags .runstore-tag",
                     has_text="from-browser").wait_for()
        conn = sqlite3.connect(db)
        try:
            (tags,) = conn.execute("SELECT tags FROM runs WHERE run_key = ?",
                                   (runs[first]["run_key"],)).fetchone()
        finally:
            conn.close()
        assert tags == '["baseline", "from-browser"]'
        page.screenshot(path=str(shots / "run-edited.png"), full_page=True)

        # Pick both runs on the list and compare them: two series per chart.
        page.goto(f"{base}/runstore/run_list")
        for name in runs:
            box = page.locator(f"input.runstore-pick[value='{runs[name]['run_key']}']")
            box.check()
        button = page.locator("button.runstore-compare-button")
        assert button.inner_text() == "Compare selected (2)"
        button.click()
        page.wait_for_url(re.compile(r"/-/runstore/compare\?runs="), timeout=WAIT_MS)
        charts = _charts(page, series=2)
        _assert_drawn(charts, {"train/loss", "val/acc"}, series=2)
        diff = page.locator(".runstore-compare-config").inner_text()
        assert "lr" in diff and "width" in diff, diff
        page.screenshot(path=str(shots / "compare.png"), full_page=True)

        _check_live_run(page, base, server["store_dir"], shots)
    assert sorted(p.name for p in shots.iterdir()) == [
        "compare.png", "list-live.png", "list.png", "live-finished.png", "live.png",
        "run-controls.png", "run-edited.png", "run.png"]


def _wait_redrawn(page: Any, key: str, before: str | None) -> str:
    """Wait until chart `key` shows other pixels than `before`; its new signature."""
    page.wait_for_function(f"(b) => ({CANVAS_SIG_JS})({key!r}) !== b && "
                           f"({CANVAS_SIG_JS})({key!r}) !== null", arg=before, timeout=WAIT_MS)
    return page.evaluate(CANVAS_SIG_JS, key)


def _states(page: Any, charts: int = 2) -> dict[str, dict[str, Any]]:
    page.wait_for_function(f"() => ({STATE_JS})().length === {charts}", timeout=WAIT_MS)
    return {c["key"]: c for c in page.evaluate(STATE_JS)}


def _variation(ys: list[float | None]) -> float:
    values = [y for y in ys if y is not None]
    return sum(abs(a - b) for a, b in zip(values, values[1:], strict=False))


def _check_chart_settings(page: Any, shots: Path, run_key: int) -> None:
    """Log scale, smoothing and the x axis, on every chart of a run page; kept on reload."""
    keys = ("train/loss", "val/acc")
    sigs = {key: page.evaluate(CANVAS_SIG_JS, key) for key in keys}
    assert all(sigs.values()), sigs
    states = _states(page)
    assert all(s["distr"] == 1 and s["series"] == ["step", s["key"]] for s in states.values())

    # Log scale: every chart redraws with a log y scale (uPlot distr 3).
    page.locator(".runstore-controls .runstore-log").check()
    for key in keys:
        sigs[key] = _wait_redrawn(page, key, sigs[key])
    states = _states(page)
    assert all(s["distr"] == 3 for s in states.values()), states

    # Smoothing: a smoothed series over the faint raw one, on every chart.
    page.evaluate(SMOOTH_JS, 0.9)
    for key in keys:
        sigs[key] = _wait_redrawn(page, key, sigs[key])
    states = _states(page)
    for key, state in states.items():
        assert state["series"] == ["step", f"{key} (raw)", key], state["series"]
        assert state["smoothed"] is not None and state["smoothed"] != state["raw"]
    # An EMA is smoother: on the noisy loss, its total variation is well below the raw's.
    loss = states["train/loss"]
    assert _variation(loss["smoothed"]) < 0.6 * _variation(loss["raw"])
    assert page.locator(".runstore-smooth-value").inner_text() == "0.90"

    # X by relative time: the runtimes of the points (run-relative seconds), then by
    # wall-clock time (unix seconds on a time scale).
    page.locator(".runstore-controls .runstore-x").select_option("runtime")
    page.wait_for_function(f"() => ({STATE_JS})().every((c) => c.xLabel === 'runtime')",
                           timeout=WAIT_MS)
    timed = page.evaluate("""async (url) => {
        const r = await fetch(url + "?key=train/loss&times=1"); return r.json(); }""",
                          f"/runstore/-/runstore/run/{run_key}/metric.json")
    states = _states(page)
    loss = states["train/loss"]
    assert loss["points"] == STEPS and loss["x0"] == timed["runtimes"][0]
    assert loss["x1"] == timed["runtimes"][-1] and loss["x1"] < STEPS
    assert not loss["time"]
    page.screenshot(path=str(shots / "run-controls.png"), full_page=True)
    shutil.copyfile(shots / "run-controls.png", SCREENSHOT_CONTROLS)
    page.locator(".runstore-controls .runstore-x").select_option("time")
    page.wait_for_function(f"() => ({STATE_JS})().every((c) => c.time)", timeout=WAIT_MS)
    loss = _states(page)["train/loss"]
    assert loss["x0"] == timed["timestamps"][0] and loss["x1"] == timed["timestamps"][-1]
    assert loss["x0"] > 1.6e9

    # The settings are kept (localStorage): a reload draws with them.
    page.reload()
    page.wait_for_function(f"() => ({STATE_JS})().length === 2 && ({STATE_JS})().every("
                           "(c) => c.distr === 3 && c.time && c.series.length === 3)",
                           timeout=WAIT_MS)
    assert page.locator(".runstore-controls .runstore-log").is_checked()
    assert page.locator(".runstore-controls .runstore-x").input_value() == "time"

    # Back to the defaults (the rest of the test expects one plain series per run).
    page.locator(".runstore-controls .runstore-log").uncheck()
    page.evaluate(SMOOTH_JS, 0)
    page.locator(".runstore-controls .runstore-x").select_option("step")
    page.wait_for_function(f"() => ({STATE_JS})().length === 2 && ({STATE_JS})().every("
                           "(c) => c.distr === 1 && !c.time && c.series.length === 2 && "
                           "c.xLabel === 'step')", timeout=WAIT_MS)


def _caption(key: str) -> str:
    return f"figure.runstore-chart[data-key='{key}'] figcaption"


def _check_live_run(page: Any, base: str, store_dir: Path, shots: Path) -> None:
    """A run this process is still logging to: live on the list; its page draws the new
    points without a reload, and shows it finished when it ends. Its metrics cross zero
    or stay below it, which a log scale must survive."""
    run = runstore.init(dir=store_dir, project="mnist", name="live-run",
                        settings={"sync_writes": True, "console": "off",
                                  "disable_stats": True, "silent": True})

    def log(step: int) -> None:
        run.log({"live/loss": 1.0 / (1 + step) + 0.2 * (step % 3) * (step >= 20),
                 "live/delta": step - 10.0, "live/neg": -1.0 - step}, step=step)

    try:
        for step in range(20):
            log(step)
        page.goto(f"{base}/runstore/run_list")
        row = page.locator("tr", has=page.locator("a.runstore-run-link", has_text="live-run"))
        row.locator(".runstore-live .runstore-live-dot").wait_for()
        assert row.locator(".runstore-state").inner_text() == "running"
        page.screenshot(path=str(shots / "list-live.png"), full_page=True)
        row.locator("a.runstore-run-link", has_text="live-run").click()
        page.wait_for_url(re.compile(r"/-/runstore/run/\d+$"), timeout=WAIT_MS)
        title = page.locator("h1.runstore-title")
        title.locator(".runstore-live-dot").wait_for()
        _states(page, charts=3)
        # A step is committed when the next one starts (or the run finishes): 0-18.
        assert "19 points" in page.locator(_caption("live/loss")).inner_text()
        assert "Live" in page.locator(".runstore-live-status").inner_text()
        before = page.evaluate(CANVAS_SIG_JS, "live/loss")
        page.evaluate("() => { window.runstoreSameDocument = true; }")
        page.screenshot(path=str(shots / "live.png"), full_page=True)

        for step in range(20, 50):
            log(step)
        page.wait_for_function(
            f"() => / 49 points/.test(document.querySelector({_caption('live/loss')!r})"
            ".textContent)", timeout=WAIT_MS)
        _wait_redrawn(page, "live/loss", before)
        state = _states(page, charts=3)["live/loss"]
        assert state["points"] == 49 and state["x1"] == 48
        assert page.evaluate("() => window.runstoreSameDocument === true")  # no reload

        # Log scale with values <= 0: left out of a log chart; a chart without a
        # positive value stays linear and says so; nothing breaks.
        page.locator(".runstore-controls .runstore-log").check()
        page.wait_for_function(
            f"() => ({STATE_JS})().filter((c) => c.distr === 3).length === 2", timeout=WAIT_MS)
        states = _states(page, charts=3)
        assert states["live/neg"]["distr"] == 1
        assert "no positive values" in page.locator(_caption("live/neg")).inner_text()
        delta = states["live/delta"]
        assert delta["distr"] == 3 and delta["raw"][:11] == [None] * 11
        assert delta["raw"][11] == 1.0
        page.locator(".runstore-controls .runstore-log").uncheck()
        page.wait_for_function(f"() => ({STATE_JS})().every((c) => c.distr === 1)",
                               timeout=WAIT_MS)
    finally:
        run.finish()
    # The next poll sees it finished: the badge says so, the last step is drawn, the dot
    # and the polling stop.
    title.locator(".runstore-state", has_text="finished").wait_for()
    page.wait_for_function(
        f"() => / 50 points/.test(document.querySelector({_caption('live/loss')!r})"
        ".textContent)", timeout=WAIT_MS)
    assert title.locator(".runstore-live-dot").count() == 0
    page.wait_for_function("() => /no longer live/.test("
                           "document.querySelector('.runstore-live-status').textContent)",
                           timeout=WAIT_MS)
    assert page.evaluate("() => window.runstoreSameDocument === true")
    page.screenshot(path=str(shots / "live-finished.png"), full_page=True)
