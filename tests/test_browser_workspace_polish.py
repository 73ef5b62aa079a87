"""The UI's last gaps of issue 13, in a real browser (headless Chromium on a real `runstore
ui`, the set-up of test_browser.py) and, for the pure number format, in node:

- compare (10 runs) and the run page (a failed run with tags and its stderr at the top):
  a drawn chart above the fold at 1440x900;
- one time format (static/runstore_time.js): local time, relative in tables with the
  exact local time in the title, on the compare, run, workspace, run list and sweep pages
  and the console; checked in a fixed time zone (Asia/Kolkata, UTC+05:30), and no page
  shows a stored ISO timestamp as text;
- the workspace scatter pads its scales: the points at the ends of a range are whole and
  inside the axes;
- parallel coordinates (workspace, 8 config keys with long names and a metric; the sweep
  page, 9 long parameter names): no two labels overlap, cut names keep their whole text
  in a tooltip;
- log-axis tick labels from 1e-8 to 1e12: readable (1e-8 ... 0.001 ... 1e12), no float
  noise, no "e+";
- show/hide a run from the runs table: the row's swatch is the colour of its line, a
  click takes the line off every chart, another brings it back.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import WAIT_MS, _browser, _chromium, _playwright, _Server

import runstore
from helpers import free_port
from runstore import _store
from ui_helpers import add_points, add_run

pytestmark = pytest.mark.ui

STATIC = Path(__file__).parent.parent / "datasette_plugins" / "runstore_ui" / "static"
EVIL = "<img src=x onerror=\"window.__pwned=1\">"
ZONE = "Asia/Kolkata"  # UTC+05:30 all year: local times are known
OFFSET = datetime.timedelta(hours=5, minutes=30)
OLD = "2024-05-01T12:00:00.123456+00:00"  # shown as the local date (over 60 days ago)
OLD_LOCAL = "2024-05-01 17:30:00"
LONG_KEYS = [f"optimizer.schedule.{word}_warmup_fraction_of_total_steps"
             for word in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")]
LONG_NAME = "run-9-" + "with-a-very-long-name-" * 10 + EVIL
SWEEP_KEYS = [key.replace(".", "_") for key in LONG_KEYS]
CONSOLE_AT = 1.7e9  # 2023-11-14 22:13:20 UTC: 03:43:20 in Kolkata


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _make_store(store_dir: Path) -> dict[str, Any]:
    """Project `polish`: 10 runs (run 0 three hours old, the others from May 2024) with
    8 long config keys, batch_size 16..512, a summary metric and a `loss` curve; a
    failed run with tags and stderr; a run whose `wide` metric spans 1e-8..1e12; a grid
    sweep over 9 long-named parameters."""
    now = datetime.datetime.now(datetime.timezone.utc)
    recent = now - datetime.timedelta(hours=3, minutes=5)
    conn = _store.connect(store_dir / "runstore.db")
    keys: dict[str, Any] = {"recent": recent}
    runs = []
    for i in range(10):
        created = _iso(recent) if i == 0 else OLD.replace("12:00", f"12:{i:02d}")
        config = {key: round(0.01 * ((i + j) % 5), 2) for j, key in enumerate(LONG_KEYS)}
        config["batch_size"] = [16, 32, 64, 128, 256, 512][i % 6]
        config["arch"] = f"transformer-variant-{i}-with-a-rather-long-name"  # a category axis
        name = f"run-{i}" if i < 9 else LONG_NAME
        key = add_run(conn, "polish", f"r{i}", name, state="finished", runtime=60.0,
                      created_at=created, config=config,
                      summary={"val/loss": 0.2 + 0.05 * ((i * 7) % 10)})
        add_points(conn, key, "loss", [(s, (1 + i) / (1 + s / 50)) for s in range(400)],
                   every=10.0)
        add_points(conn, key, "acc", [(s, 1 - 1 / (1 + s / (20 + 5 * i))) for s in range(400)],
                   every=10.0)
        runs.append(key)
    keys["runs"] = runs
    failed = add_run(conn, "solo", "bad", "failed-run", state="failed", exit_code=1,
                     created_at=OLD, finished_at=OLD, tags=["sgd", "diverged", "lr-sweep"],
                     config={"lr": 0.5}, summary={"loss": 9.0},
                     notes="# Why\n\n" + "A long note.\n\n" * 20)
    add_points(conn, failed, "loss", [(s, 1 + s / 100) for s in range(300)], every=10.0)
    add_points(conn, failed, "acc", [(s, 0.1) for s in range(300)], every=10.0)
    wide = add_run(conn, "solo", "wide", "wide-run", state="finished", created_at=OLD)
    add_points(conn, wide, "wide", [(s, 10.0 ** (-8 + 20 * s / 199)) for s in range(200)])
    keys.update(failed=failed, wide=wide)
    lines = [("stdout", "epoch 1"), ("stderr", "Traceback (most recent call last):")]
    lines += [("stderr", f'  File "train.py", line {n}, in step') for n in range(12)]
    lines += [("stderr", "FloatingPointError: loss is nan " + EVIL)]
    with _store.transaction(conn):
        conn.executemany(
            "INSERT INTO console_lines (run_key, seq, stream, at, line) VALUES (?, ?, ?, ?, ?)",
            [(failed, i, stream, CONSOLE_AT + i, line) for i, (stream, line) in enumerate(lines)])
        cache: dict[str, int] = {}
        _store.intern_keys(conn, ["system/cpu"], cache)
        conn.executemany("INSERT INTO system_metrics (run_key, key_id, at, value) VALUES"
                         " (?, ?, ?, ?)", [(failed, cache["system/cpu"], CONSOLE_AT + 60 * i,
                                            10.0 + i) for i in range(30)])
    conn.close()

    params = {name: {"values": [1]} for name in SWEEP_KEYS}
    params["learning_rate_of_the_optimizer_after_warmup"] = {"values": [0.1, 0.01]}
    sweep_id = runstore.sweep({"method": "grid", "name": "long names",
                               "metric": {"name": "val/loss", "goal": "minimize"},
                               "parameters": params}, project="swept", dir=store_dir)

    def train() -> None:
        run = runstore.init(settings={"silent": True})
        runstore.log({"val/loss": run.config["learning_rate_of_the_optimizer_after_warmup"]})

    runstore.agent(sweep_id, function=train, dir=store_dir)
    keys["sweep"] = sweep_id
    return keys


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _playwright()
    _chromium()
    store_dir = tmp_path_factory.mktemp("polish") / "store"
    keys = _make_store(store_dir)
    port = free_port()
    server = _Server(store_dir, port)
    try:
        server.login_url()
        server.wait_listening(port)
        yield {"base": f"http://127.0.0.1:{port}/runstore", "db": store_dir / "runstore.db",
               **keys}
    finally:
        server.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A 1440x900 page in the time zone ZONE (every browser error fails the test)."""
    with _browser(_playwright(), _chromium(), tmp_path, 900) as (context, page):
        page.set_viewport_size({"width": 1440, "height": 900})
        page.set_default_timeout(WAIT_MS)
        cdp = context.new_cdp_session(page)
        cdp.send("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
        page.cdp = cdp  # kept alive with the page
        yield page


CHARTS_READY_JS = """(n) => {
  const figs = Array.from(document.querySelectorAll("figure.runstore-chart"));
  return figs.length > 0 && figs[0].runstoreChart && figs[0].runstoreChart.u &&
    figs[0].runstoreChart.u.series.length >= n + 1;
}"""

FIRST_CHART_JS = """() => {
  const fig = document.querySelector("figure.runstore-chart");
  const canvas = fig.querySelector(".uplot canvas"), box = canvas.getBoundingClientRect();
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < d.length; i += 4) { if (d[i]) { painted++; } }
  return {top: box.top, bottom: box.bottom, height: box.height, painted: painted,
          scrollY: window.scrollY, fold: window.innerHeight};
}"""


def _wait_workspace(page: Any, after: str = "0") -> None:
    page.wait_for_function(
        "(after) => { const p = document.querySelector('.runstore-workspace');"
        " return p && Number(p.dataset.drawn || 0) > Number(after); }", arg=after)


def _drawn_at(page: Any) -> str:
    return str(page.evaluate(
        "() => document.querySelector('.runstore-workspace').dataset.drawn || '0'"))


def _above_the_fold(page: Any, runs: int) -> dict[str, Any]:
    page.wait_for_function(CHARTS_READY_JS, arg=runs)
    chart: dict[str, Any] = page.evaluate(FIRST_CHART_JS)
    assert chart["scrollY"] == 0 and chart["fold"] == 900, chart
    assert chart["top"] >= 0 and chart["bottom"] <= 900 and chart["height"] >= 150, chart
    assert chart["painted"] > 1000, chart  # drawn, not an empty frame
    return chart


def test_a_chart_above_the_fold_on_compare_and_the_run_page(ui: dict[str, Any],
                                                            page: Any) -> None:
    runs = ",".join(map(str, ui["runs"]))  # the most compare takes: 10
    page.goto(f"{ui['base']}/-/runstore/compare?runs={runs}")
    _above_the_fold(page, 10)
    # A long (hostile) run name stays on one line, cut, whole in its title: no sideways
    # scrolling, nothing injected.
    link = page.locator(".runstore-compare-runs a.runstore-run-link").last
    assert link.text_content() == LONG_NAME and link.get_attribute("title") == LONG_NAME
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1440, width
    assert page.evaluate("() => window.__pwned") is None
    # The tables of config and summary come after the charts.
    order = page.evaluate("""() => ["figure.runstore-chart", ".runstore-compare-config",
        ".runstore-compare-summary"].map((s) => document.querySelector(s)
        .getBoundingClientRect().top)""")
    assert order == sorted(order), order

    # A failed run with tags and a long stderr tail at the top, and long notes.
    page.goto(f"{ui['base']}/-/runstore/run/{ui['failed']}")
    assert page.locator(".runstore-error-lines").is_visible()
    # The stderr tail ends with the error itself, scrolled into view in its box.
    last = page.evaluate('''() => {
      const pre = document.querySelector(".runstore-error-lines");
      return {scrolled: pre.scrollTop, room: pre.scrollHeight - pre.clientHeight,
              text: pre.textContent.trim().split("\\n").pop()};
    }''')
    assert last["room"] > 0 and last["scrolled"] >= last["room"] - 1, last
    assert last["text"] == "FloatingPointError: loss is nan " + EVIL, last
    assert page.locator(".runstore-tags .runstore-tag").count() == 3
    _above_the_fold(page, 1)
    assert page.evaluate("() => window.__pwned") is None


def _local(moment: datetime.datetime) -> str:
    return (moment.astimezone(datetime.timezone.utc) + OFFSET).strftime("%Y-%m-%d %H:%M:%S")


TIMES_JS = """(sel) => Array.from(document.querySelectorAll(sel)).map((t) =>
  ({text: t.textContent.trim(), title: t.title || ""}))"""
ISO_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _no_iso_text(page: Any) -> None:
    text = page.evaluate("() => document.body.innerText")
    assert not ISO_TEXT.search(text), ISO_TEXT.search(text)


def _check_time_ticks(axis: dict[str, Any]) -> None:
    """Labels of a time axis (unix seconds): local HH:MM (HH:MM:SS below a minute)."""
    shown = [(s, v) for s, v in zip(axis["splits"], axis["values"], strict=True) if v]
    assert len(shown) >= 2, axis
    seconds = min(b - a for (a, _), (b, _) in zip(shown, shown[1:], strict=False)) < 60
    for split, label in shown:
        moment = datetime.datetime.fromtimestamp(split, datetime.timezone.utc) + OFFSET
        assert label == moment.strftime("%H:%M:%S" if seconds else "%H:%M"), (split, label)


def test_one_time_format_in_local_time(ui: dict[str, Any], page: Any) -> None:
    recent_local = _local(ui["recent"])
    base = ui["base"]

    # Compare: created, relative, the exact local time in the title.
    page.goto(f"{base}/-/runstore/compare?runs={ui['runs'][0]},{ui['runs'][1]}")
    page.wait_for_function("() => window.RunstoreTime")
    created = page.evaluate(TIMES_JS, ".runstore-compare-runs time")
    assert created == [{"text": "3 h ago", "title": recent_local},
                       {"text": "2024-05-01", "title": "2024-05-01 17:31:00"}], created
    _no_iso_text(page)

    # The run page: header times exact and local; console lines local clock times.
    page.goto(f"{base}/-/runstore/run/{ui['failed']}")
    header = page.evaluate(TIMES_JS, ".runstore-header time")
    assert header, header
    for time in header:  # created, finished
        assert time["text"] == OLD_LOCAL and time["title"].startswith(OLD + " · "), header
    console = page.evaluate(TIMES_JS, ".runstore-console time")
    assert console[0] == {"text": "03:43:20", "title": "2023-11-15 03:43:20"}, console
    assert console[1]["text"] == "03:43:21", console
    assert "local time" in (page.locator(".runstore-console-info").text_content() or "")
    # A system chart's legend names the hovered sample's local time.
    over = page.locator(".runstore-syschart .u-over").first
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
    legend = page.locator(".runstore-syschart .u-legend .u-series").first
    page.wait_for_function("(el) => el.querySelector('.u-value').textContent.trim()",
                           arg=legend.element_handle())
    assert (legend.locator(".u-value").text_content() or "").strip() == "2023-11-15 03:43:20"
    page.evaluate("() => window.scrollTo(0, 0)")
    # x by wall-clock time: tick labels in local 24-hour time (uPlot's own: "3:44am").
    page.select_option(".runstore-controls .runstore-x", "time")
    page.wait_for_function("() => { const c = document.querySelector('figure.runstore-chart')"
                           ".runstoreChart; return c.u && c.u.scales.x.time; }")
    _check_time_ticks(page.evaluate("""() => {
      const axis = document.querySelector("figure.runstore-chart").runstoreChart.u.axes[0];
      return {splits: axis._splits, values: axis._values};
    }"""))
    page.select_option(".runstore-controls .runstore-x", "step")  # the browser keeps it
    _no_iso_text(page)

    # The workspace's runs table and the run list: relative, exact local in the title.
    for url, name in ((f"{base}/-/runstore/workspace?project=polish&_sort=created_at",
                       "workspace"), (f"{base}/run_list?project=polish&_sort=created_at",
                                      "run list")):
        page.goto(url)
        page.wait_for_function("() => document.querySelector('td.col-created_at time[title]')")
        cells = page.evaluate(TIMES_JS, "td.col-created_at time")
        assert len(cells) == 10, (name, cells)
        assert cells[-1] == {"text": "3 h ago", "title": recent_local}, (name, cells)
        assert cells[0] == {"text": "2024-05-01", "title": "2024-05-01 17:31:00"}, (name, cells)
        _no_iso_text(page)
    # The workspace charts by wall time: the same tick labels.
    page.select_option(".runstore-ws-x", "time")
    page.wait_for_function("() => window.runstoreWorkspace.charts.length &&"
                           " window.runstoreWorkspace.charts[0].u.scales.x.time")
    _check_time_ticks(page.evaluate("""() => {
      const axis = window.runstoreWorkspace.charts[0].u.axes[0];
      return {splits: axis._splits, values: axis._values};
    }"""))
    page.select_option(".runstore-ws-x", "step")

    # The sweep page: created exact; its agent's times relative.
    page.goto(f"{base}/-/runstore/sweep/{ui['sweep']}")
    page.wait_for_function("() => window.RunstoreTime")
    sweep = page.evaluate(TIMES_JS, ".runstore-header time")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ (s|min) ago\)",
                        sweep[0]["text"]), sweep
    agents = page.evaluate(TIMES_JS, ".runstore-sweep-agents time")
    assert agents and all(re.fullmatch(r"\d+ (s|min) ago", a["text"]) and
                          re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", a["title"])
                          for a in agents), agents
    _no_iso_text(page)
    page.goto(f"{base}/-/runstore/sweeps")
    listed = page.evaluate(TIMES_JS, ".runstore-sweep-list time")
    assert len(listed) == 1 and re.fullmatch(r"\d+ (s|min) ago", listed[0]["text"]), listed
    _no_iso_text(page)


SCATTER_JS = """() => {
  const svg = document.querySelector(".runstore-ws-scatter svg");
  const [yAxis, xAxis] = Array.from(svg.querySelectorAll("line.runstore-scatter-axis"))
    .map((l) => l.getBoundingClientRect()).sort((a, b) => a.width - b.width);
  const frame = svg.getBoundingClientRect();
  return {
    left: yAxis.right, bottom: xAxis.top, top: yAxis.top, right: xAxis.right, frame: {
      left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom},
    points: Array.from(svg.querySelectorAll("circle")).map((c) => {
      const b = c.getBoundingClientRect();
      return {left: b.left, right: b.right, top: b.top, bottom: b.bottom,
              title: c.querySelector("title").textContent};
    }),
  };
}"""


def test_scatter_points_at_the_ends_of_a_range_are_not_clipped(ui: dict[str, Any],
                                                               page: Any) -> None:
    page.goto(f"{ui['base']}/-/runstore/workspace?project=polish")
    _wait_workspace(page)
    page.select_option(".runstore-ws-metric", "val/loss")
    page.select_option(".runstore-ws-scatter-x", "batch_size")
    found = page.evaluate(SCATTER_JS)
    points = found["points"]
    assert len(points) == 10, found
    assert any("batch_size 16," in p["title"] for p in points)  # the ends of the range
    assert any("batch_size 512," in p["title"] for p in points)
    for p in points:  # whole, inside the axes and the plot
        assert p["left"] > found["left"] and p["bottom"] < found["bottom"], (p, found)
        assert p["top"] >= found["top"] and p["right"] <= found["right"], (p, found)
        assert found["frame"]["left"] <= p["left"] and p["right"] <= found["frame"]["right"]
        assert found["frame"]["top"] <= p["top"] and p["bottom"] <= found["frame"]["bottom"]

    # Against a text key (long category names): no two labels overlap, cut ones keep
    # their whole text in a tooltip.
    page.select_option(".runstore-ws-scatter-x", "arch")
    labels = page.evaluate("""() => Array.from(document.querySelectorAll(
      ".runstore-ws-scatter svg text")).map((t) => {
        const b = t.getBoundingClientRect(), title = t.querySelector("title");
        return {text: t.childNodes[0].textContent, title: title ? title.textContent : null,
                left: b.left, right: b.right, top: b.top, bottom: b.bottom};
      })""")
    assert sum(1 for label in labels if (label["title"] or "").startswith("transformer-")) >= 3
    _no_overlap(labels)


LABELS_JS = """(sel) => {
  const svg = document.querySelector(sel);
  const frame = svg.getBoundingClientRect();
  return {
    frame: {left: frame.left, right: frame.right, top: frame.top},
    axes: Array.from(svg.querySelectorAll(".runstore-parallel-axis"))
      .map((g) => g.dataset.axis),
    labels: Array.from(svg.querySelectorAll(".runstore-parallel-axis text")).map((t) => {
      const b = t.getBoundingClientRect(), title = t.querySelector("title");
      return {text: t.childNodes[0].textContent, title: title ? title.textContent : null,
              name: t.classList.contains("runstore-parallel-name"),
              left: b.left, right: b.right, top: b.top, bottom: b.bottom};
    }),
  };
}"""


def _check_labels(found: dict[str, Any], names: list[str]) -> None:
    assert found["axes"] == names, found["axes"]
    labels = found["labels"]
    shown = [label for label in labels if label["name"]]
    assert len(shown) == len(names)
    for label, name in zip(shown, names, strict=True):
        if label["title"] is None:
            assert label["text"] in (name, name + " (log)"), label
        else:  # cut to fit: the whole name in its tooltip
            assert label["text"].startswith(name[:3]) and "…" in label["text"], label
            assert label["title"] in (name, name + " (log)"), label
    for label in labels:
        assert found["frame"]["left"] <= label["left"] + 0.5, label
        assert label["right"] <= found["frame"]["right"] + 0.5, label
        assert label["top"] >= found["frame"]["top"] - 0.5, label
    _no_overlap(labels)


def _no_overlap(labels: list[dict[str, Any]]) -> None:
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            apart = (a["right"] <= b["left"] + 0.5 or b["right"] <= a["left"] + 0.5 or
                     a["bottom"] <= b["top"] + 0.5 or b["bottom"] <= a["top"] + 0.5)
            assert apart, ("labels overlap", a, b)


def test_parallel_coordinate_labels_do_not_overlap(ui: dict[str, Any], page: Any) -> None:
    page.goto(f"{ui['base']}/-/runstore/workspace?project=polish")
    _wait_workspace(page)
    page.select_option(".runstore-ws-metric", "val/loss")
    found = page.evaluate(LABELS_JS, ".runstore-ws-parallel svg")
    # 8 config keys at most (batch_size and 7 long ones), then the metric
    _check_labels(found, sorted(["arch", "batch_size"] + LONG_KEYS)[:8] + ["val/loss"])
    assert sum(1 for label in found["labels"] if label["name"] and label["title"]) >= 6
    ticks = [label for label in found["labels"] if not label["name"]]
    arch = [label for label in ticks if (label["title"] or "").startswith("transformer-")]
    assert len(arch) == 10, ticks  # every category labelled, cut to fit, whole in the title

    page.goto(f"{ui['base']}/-/runstore/sweep/{ui['sweep']}")
    page.wait_for_selector("#runstore-sweep-parallel svg")
    found = page.evaluate(LABELS_JS, "#runstore-sweep-parallel svg")
    assert len(found["axes"]) == 10, found["axes"]  # 9 parameters and the metric
    _check_labels(found, found["axes"])
    assert set(found["axes"]) >= set(SWEEP_KEYS)


LOG_TICKS_RUNNER = """
global.window = {};
require(process.argv[1]);
const splits = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(window.RunstoreCharts.logTickLabels(splits)));
"""
LOG_LABEL = re.compile(r"0|[1-9]\d{0,3}|[1-9]\d{0,2}(,\d{3})+|0\.\d+|\d\.\d+|[1-9](\.\d+)?e-?\d+")


def _check_log_labels(splits: list[float | None], labels: list[str]) -> None:
    assert len(labels) == len(splits)
    for value, label in zip(splits, labels, strict=True):
        if value is None:
            assert label == ""
            continue
        assert LOG_LABEL.fullmatch(label), (value, label)
        assert "e+" not in label and len(label) <= 7, (value, label)
        assert math.isclose(float(label.replace(",", "")), value, rel_tol=1e-6), (value, label)


def test_log_tick_labels_from_1e_minus_8_to_1e12() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    splits: list[float | None] = []
    for exponent in range(-8, 13):  # as uPlot makes them: float noise included
        for m in range(1, 10):
            splits.append(m * 10.0 ** exponent)
            splits.append(m * 10.0 ** exponent * (1 + 2e-16))
    splits += [0.00010000000000000002, 0.00030000000000000003, 0.1 + 0.2, None]
    done = subprocess.run([node, "-e", LOG_TICKS_RUNNER, str(STATIC / "runstore_charts.js")],
                          check=True, text=True, capture_output=True, timeout=30,
                          input=json.dumps(splits))
    labels = json.loads(done.stdout)
    _check_log_labels(splits, labels)
    by_value = dict(zip([str(v) for v in splits], labels, strict=True))
    assert by_value[str(1e-8)] == "1e-8" and by_value[str(1e12)] == "1e12"
    assert by_value[str(0.00010000000000000002)] == "1e-4"
    assert by_value[str(0.001)] == "0.001" and by_value[str(0.1 + 0.2)] == "0.3"
    assert by_value[str(20000.0)] == "20,000" and by_value[str(1e6)] == "1e6"


def test_log_axis_in_the_browser(ui: dict[str, Any], page: Any) -> None:
    page.goto(f"{ui['base']}/-/runstore/run/{ui['wide']}")
    page.wait_for_function(CHARTS_READY_JS, arg=1)
    page.check(".runstore-controls .runstore-log")
    page.wait_for_function("() => document.querySelector('figure.runstore-chart')"
                           ".runstoreChart.u.scales.y.distr === 3")
    axis = page.evaluate("""() => {
      const u = document.querySelector("figure.runstore-chart").runstoreChart.u;
      return {splits: u.axes[1]._splits, values: u.axes[1]._values,
              min: u.scales.y.min, max: u.scales.y.max};
    }""")
    assert axis["min"] <= 1.1e-8 and axis["max"] >= 0.9e12, axis
    shown = [(s, v) for s, v in zip(axis["splits"], axis["values"], strict=True) if v]
    assert len(shown) >= 4, axis
    _check_log_labels([s for s, _ in shown], [v for _, v in shown])
    page.uncheck(".runstore-controls .runstore-log")  # the setting is the browser's


SWATCH_JS = """() => {
  const ws = window.runstoreWorkspace;
  const rows = Array.from(document.querySelectorAll("tr[data-run-key]")).map((tr) => {
    const b = tr.querySelector("button.runstore-swatch");
    return {key: tr.dataset.runKey, name: tr.querySelector("td.col-name").textContent.trim(),
            swatch: getComputedStyle(b).borderColor, fill: getComputedStyle(b).backgroundColor,
            hidden: tr.classList.contains("runstore-run-hidden")};
  });
  const probe = document.createElement("span");
  document.body.appendChild(probe);
  const rgb = (c) => { probe.style.color = c; return getComputedStyle(probe).color; };
  const charts = ws.charts.map((c) => {
    const canvas = c.figure.querySelector("canvas");
    const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const lines = c.u.series.slice(1).map((s) => ({label: s.label, color: rgb(s.stroke()),
                                                    pixels: 0}));
    const parsed = lines.map((l) => l.color.match(/\\d+/g).map(Number));
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 200) { continue; }
      parsed.forEach((p, j) => {
        if (Math.abs(d[i] - p[0]) <= 30 && Math.abs(d[i + 1] - p[1]) <= 30 &&
            Math.abs(d[i + 2] - p[2]) <= 30) { lines[j].pixels++; }
      });
    }
    return {key: c.key, lines: lines};
  });
  probe.remove();
  return {rows: rows, charts: charts};
}"""


def _pixels(state: dict[str, Any], color: str) -> list[int]:
    """Per chart: the pixels of the line drawn in `color` (0 when there is no such line)."""
    out = []
    for chart in state["charts"]:
        out.append(sum(line["pixels"] for line in chart["lines"] if line["color"] == color))
    return out


def test_hide_and_show_a_run_from_its_row(ui: dict[str, Any], page: Any) -> None:
    page.goto(f"{ui['base']}/-/runstore/workspace?project=polish&_sort=created_at"
              "&created_at__gt=2024-05-01T12:07")  # 4 runs: r7..r9 and r0, the newest
    _wait_workspace(page)
    state = page.evaluate(SWATCH_JS)
    rows = state["rows"]
    assert len(rows) == 4 and [c["key"] for c in state["charts"]] == ["acc", "loss"], state
    for chart in state["charts"]:  # each row's swatch is the colour of its run's line
        assert {(line["label"], line["color"]) for line in chart["lines"]} == \
            {(row["name"], row["swatch"]) for row in rows}, (chart, rows)
        assert all(line["pixels"] > 100 for line in chart["lines"]), chart
    assert len({row["swatch"] for row in rows}) == 4

    target = rows[1]
    before = _drawn_at(page)
    page.click(f'tr[data-run-key="{target["key"]}"] button.runstore-swatch')
    _wait_workspace(page, before)
    hidden = page.evaluate(SWATCH_JS)
    assert _pixels(hidden, target["swatch"]) == [0, 0], hidden  # gone from every chart
    for row in rows:
        if row is not target:
            assert all(n > 100 for n in _pixels(hidden, row["swatch"])), (row, hidden)
    (row,) = [r for r in hidden["rows"] if r["key"] == target["key"]]
    assert row["hidden"] and row["fill"] == "rgba(0, 0, 0, 0)", row  # an empty swatch

    before = _drawn_at(page)
    page.click(f'tr[data-run-key="{target["key"]}"] button.runstore-swatch')
    _wait_workspace(page, before)
    shown = page.evaluate(SWATCH_JS)
    assert all(n > 100 for n in _pixels(shown, target["swatch"])), shown
    assert not any(r["hidden"] for r in shown["rows"])
