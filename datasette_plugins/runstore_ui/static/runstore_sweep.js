/* runstore sweep page: the runs table sorted by clicking a header, the best-so-far chart
 * (uPlot, vendored) and the parallel-coordinates plot (hand-written SVG, drawn by
 * runstore_parallel.js, which the workspace charts share).
 *
 * Page data comes as JSON in <script id="runstore-sweep-data">: the metric and goal, the
 * axes (each swept parameter: "category" with its categories, "log" or "linear"; the
 * metric last) and the trials in claim order (run name, status, metric, best so far,
 * a value per parameter axis). Sweep- and run-supplied text reaches the page only as
 * text (textContent, and uPlot sets its legend labels with textContent).
 */
(function () {
  "use strict";

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function message(el, text) {
    var p = document.createElement("p");
    p.className = "runstore-empty";
    p.textContent = text;
    el.replaceChildren(p);
  }

  /* -- sorting the runs table ------------------------------------------------------- */

  function sortable(table) {
    var headers = table.querySelectorAll("thead th");
    var state = { col: -1, dir: 1 };
    headers.forEach(function (th, col) {
      th.classList.add("runstore-sort-header");
      th.setAttribute("role", "button");
      th.tabIndex = 0;
      function go() {
        state.dir = state.col === col ? -state.dir : 1;
        state.col = col;
        sortBy(table, col, state.dir);
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
      });
    });
  }

  function cellKey(td) {
    var raw = td.hasAttribute("data-value") ? td.getAttribute("data-value") : td.textContent;
    var n = td.hasAttribute("data-value") ? Number(raw) : NaN;
    if (raw.trim() === "") { return { empty: true }; }
    return isFinite(n) ? { num: n } : { text: raw.trim().toLowerCase() };
  }

  function compareKeys(a, b) {
    if (a.empty || b.empty) { return a.empty && b.empty ? 0 : (a.empty ? 1 : -1); }
    if ("num" in a && "num" in b) { return a.num - b.num; }
    if ("num" in a) { return -1; }  // numbers before text
    if ("num" in b) { return 1; }
    return a.text < b.text ? -1 : (a.text > b.text ? 1 : 0);
  }

  function sortBy(table, col, dir) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (tr, i) {
      return { tr: tr, key: cellKey(tr.cells[col]), i: i };
    });
    rows.sort(function (a, b) {
      var c = compareKeys(a.key, b.key);
      if (a.key.empty || b.key.empty) { return c || a.i - b.i; }  // empty cells last
      return dir * c || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.tr); });
  }

  /* -- best so far (uPlot) ------------------------------------------------------------ */

  function bestChart(el, page) {
    var plot = el.querySelector(".runstore-sweep-plot");
    var trials = page.trials;
    if (!trials.some(function (t) { return isNumber(t.metric); })) {
      message(plot, "No trial has a metric yet.");
      return;
    }
    if (!window.uPlot) { message(plot, "The chart library did not load."); return; }
    var xs = trials.map(function (t) { return t.index; });
    var data = [xs, trials.map(function (t) { return isNumber(t.metric) ? t.metric : null; }),
      trials.map(function (t) { return isNumber(t.best) ? t.best : null; })];
    var label = page.metric || "metric";
    var opts = {
      width: Math.max(320, plot.clientWidth || 640),
      height: 260,
      scales: { x: { time: false } },
      series: [
        { label: "trial" },
        { label: label, stroke: "#1f77b4", width: 0, paths: function () { return null; },
          points: { show: true, size: 7, stroke: "#1f77b4", fill: "#1f77b4" } },
        { label: "best so far", stroke: "#d62728", width: 2, spanGaps: true,
          paths: window.uPlot.paths.stepped({ align: 1 }), points: { show: false } }
      ],
      axes: [{ label: "trial (claim order)", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
        { label: label }]
    };
    plot.replaceChildren();
    el.uplot = new window.uPlot(opts, data, plot);
  }

  /* -- parallel coordinates (SVG, drawn by runstore_parallel.js) ---------------------- */

  function parallel(el, page) {
    var plot = el.querySelector(".runstore-sweep-plot");
    if (!page.trials.length) { message(plot, "No trials yet."); return; }
    if (!window.RunstoreParallel) { message(plot, "The plot script did not load."); return; }
    window.RunstoreParallel.parallel(plot, {
      axes: page.axes, metric: page.metric, goal: page.goal,
      title: "Parallel coordinates of the swept parameters and " + (page.metric || "the metric"),
      rows: page.trials.map(function (t) {
        var metric = isNumber(t.metric) ? t.metric : null;
        return {
          name: t.name, status: t.status, extra: " (#" + t.seq + ", " + t.status + ")",
          metric: metric,
          values: page.axes.map(function (axis, a) { return axis.metric ? metric : t.values[a]; })
        };
      })
    });
  }

  function start() {
    var dataEl = document.getElementById("runstore-sweep-data");
    if (!dataEl) { return; }
    var page = JSON.parse(dataEl.textContent);
    var table = document.getElementById("runstore-sweep-runs");
    if (table) { sortable(table); }
    var best = document.getElementById("runstore-sweep-best");
    if (best) { bestChart(best, page); }
    var par = document.getElementById("runstore-sweep-parallel");
    if (par) { parallel(par, page); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
