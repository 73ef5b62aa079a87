/* runstore sweep page: the runs table sorted by clicking a header, the best-so-far chart
 * (uPlot, vendored) and the parallel-coordinates plot (hand-written SVG).
 *
 * Page data comes as JSON in <script id="runstore-sweep-data">: the metric and goal, the
 * axes (each swept parameter: "category" with its categories, "log" or "linear"; the
 * metric last) and the trials in claim order (run name, status, metric, best so far,
 * a value per parameter axis). Sweep- and run-supplied text reaches the page only as
 * text (textContent, and uPlot sets its legend labels with textContent).
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  // viridis, from worst (light) to best (dark)
  var STOPS = [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]];

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v) {
    if (!isNumber(v)) { return ""; }
    var a = Math.abs(v);
    return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

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

  /* -- parallel coordinates (SVG) ----------------------------------------------------- */

  function node(name, attrs, parent) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(el); }
    return el;
  }

  function color(t) {
    t = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
    var i = Math.min(Math.floor(t), STOPS.length - 2), f = t - i;
    var a = STOPS[i], b = STOPS[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + f * (b[k] - a[k])); })
      .join(",") + ")";
  }

  /* A scale for one axis: pos(value) in [0, 1] (1 at the top) or null, and its ticks. */
  function scaleFor(axis, values) {
    if (axis.type === "category") {
      var cats = axis.categories.slice();
      values.forEach(function (v) { if (v !== null && cats.indexOf(v) < 0) { cats.push(v); } });
      var n = cats.length;
      var posOf = function (v) {
        var i = cats.indexOf(v);
        return i < 0 ? null : (n === 1 ? 0.5 : 1 - i / (n - 1));
      };
      return { pos: posOf, ticks: cats.map(function (c) { return { at: posOf(c), text: c }; }) };
    }
    var log = axis.type === "log";
    var xs = values.filter(function (v) { return isNumber(v) && (!log || v > 0); })
      .map(function (v) { return log ? Math.log10(v) : v; });
    if (!xs.length) { return { pos: function () { return null; }, ticks: [] }; }
    var lo = Math.min.apply(null, xs), hi = Math.max.apply(null, xs);
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var pos = function (v) {
      if (!isNumber(v) || (log && v <= 0)) { return null; }
      return ((log ? Math.log10(v) : v) - lo) / (hi - lo);
    };
    var ticks = [0, 0.5, 1].map(function (f) {
      var x = lo + f * (hi - lo);
      return { at: f, text: fmt(log ? Math.pow(10, x) : x) };
    });
    return { pos: pos, ticks: ticks, log: log };
  }

  function parallel(el, page) {
    var plot = el.querySelector(".runstore-sweep-plot");
    var axes = page.axes, trials = page.trials;
    if (!trials.length) { message(plot, "No trials yet."); return; }
    var W = Math.max(480, plot.clientWidth || 800), H = 360;
    var top = 36, bottom = 40, left = 60, right = 70;
    var step = axes.length > 1 ? (W - left - right) / (axes.length - 1) : 0;
    var columns = axes.map(function (axis, a) {
      var values = trials.map(function (t) {
        return axis.metric ? (isNumber(t.metric) ? t.metric : null) : t.values[a];
      });
      return scaleFor(axis, values);
    });
    var metrics = trials.map(function (t) { return t.metric; }).filter(isNumber);
    var mlo = Math.min.apply(null, metrics), mhi = Math.max.apply(null, metrics);
    var svg = node("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "class": "runstore-parallel-svg" });
    node("title", {}, svg).textContent = "Parallel coordinates of the swept parameters and " +
      (page.metric || "the metric");
    var x = function (a) { return left + a * step; };
    var y = function (p) { return top + (1 - p) * (H - top - bottom); };
    var lines = node("g", { "class": "runstore-parallel-lines" }, svg);
    // trials without a metric first (grey, underneath), then worst to best
    var order = trials.slice().sort(function (s, t) {
      var sm = isNumber(s.metric), tm = isNumber(t.metric);
      if (sm !== tm) { return sm ? 1 : -1; }
      if (!sm) { return 0; }
      return page.goal === "minimize" ? t.metric - s.metric : s.metric - t.metric;
    });
    order.forEach(function (trial) {
      var pts = [], segments = [];
      axes.forEach(function (axis, a) {
        var v = axis.metric ? trial.metric : trial.values[a];
        var p = columns[a].pos(v);
        if (p === null) { if (pts.length) { segments.push(pts); } pts = []; return; }
        pts.push(x(a).toFixed(1) + "," + y(p).toFixed(1));
      });
      if (pts.length) { segments.push(pts); }
      var scored = isNumber(trial.metric);
      var t = scored && mhi > mlo ? (trial.metric - mlo) / (mhi - mlo) : 1;
      if (page.goal !== "minimize") { t = 1 - t; }
      var g = node("g", { "class": "runstore-parallel-trial" + (scored ? "" : " runstore-unscored"),
        "data-status": trial.status }, lines);
      node("title", {}, g).textContent = trial.name + " (#" + trial.seq + ", " + trial.status +
        "): " + (page.metric || "metric") + " " + (scored ? fmt(trial.metric) : "none");
      segments.forEach(function (seg) {
        var attrs = { points: seg.join(" "), fill: "none", "stroke-width": scored ? 1.6 : 1,
          stroke: scored ? color(1 - t) : "#bbb", "stroke-opacity": scored ? 0.85 : 0.7 };
        if (!scored) { attrs["stroke-dasharray"] = "4 3"; }
        if (seg.length === 1) {
          var xy = seg[0].split(",");
          node("circle", { cx: xy[0], cy: xy[1], r: 2.5, fill: attrs.stroke }, g);
        } else {
          node("polyline", attrs, g);
        }
      });
    });
    axes.forEach(function (axis, a) {
      var g = node("g", { "class": "runstore-parallel-axis", "data-axis": axis.name }, svg);
      node("line", { x1: x(a), x2: x(a), y1: y(0), y2: y(1), stroke: "#333" }, g);
      var name = node("text", { x: x(a), y: top - 18, "text-anchor": "middle",
        "font-weight": "bold", "font-size": 12 }, g);
      name.textContent = axis.name + (columns[a].log ? " (log)" : "");
      columns[a].ticks.forEach(function (tick) {
        if (tick.at === null) { return; }
        node("line", { x1: x(a) - 4, x2: x(a), y1: y(tick.at), y2: y(tick.at), stroke: "#333" }, g);
        var text = node("text", { x: x(a) - 6, y: y(tick.at) + 4, "text-anchor": "end",
          "font-size": 11, fill: "#333", "paint-order": "stroke", stroke: "#fff",
          "stroke-width": 3 }, g);
        text.textContent = tick.text.length > 18 ? tick.text.slice(0, 17) + "…" : tick.text;
      });
    });
    plot.replaceChildren(svg);
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
