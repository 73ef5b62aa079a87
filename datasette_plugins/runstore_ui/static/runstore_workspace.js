/* runstore workspace charts: on a Datasette table page whose rows are runs (a table or
 * view with a run_key column), a panel above the table with charts of every run the
 * page's filter selects (up to 100).
 *
 * 1. The page's own URL as JSON (same filters, sort, search; _shape=array, _size=100)
 *    gives the run_keys, in the table's order.
 * 2. series.json?runs=... (views/series.py) gives the runs' names, groups, config,
 *    summary and metric keys; then, for the metrics the picker selects, their points
 *    (M4 from the store's per-block summaries, so a 1M-point run costs what a small one
 *    does).
 * 3. One uPlot chart per metric in a grid (2-4 per row), one colour per run; the table
 *    rows get a swatch of that colour, and clicking a swatch shows or hides the run.
 *    Grouped (by run_group, job_type or a config key), a chart draws each group's mean
 *    with a min-max band. Below: parallel coordinates of the config keys that vary
 *    against a summary metric, and a scatter of one config key against it
 *    (runstore_parallel.js).
 * Settings (metric regex, x axis, grouping, metric of the parallel plot) are kept in
 * localStorage per table. Run-supplied text reaches the page only as text (textContent,
 * option.text, SVG <title> text).
 */
(function () {
  "use strict";

  var MAX_RUNS = 100;
  var MAX_CHARTS = 24;
  var STORAGE_PREFIX = "runstore:workspace:";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var X_BUILTIN = [["step", "step"], ["runtime", "relative time (s)"], ["time", "wall time"]];
  var GRID = 240;  // x positions a group's mean and band are computed at

  function colorAt(i) {
    if (i < PALETTE.length) { return PALETTE[i]; }
    var hue = Math.round((i * 137.508) % 360);
    return "hsl(" + hue + ", 62%, 42%)";
  }

  function fade(color, alpha) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
    if (m) {
      return "rgba(" + parseInt(m[1], 16) + "," + parseInt(m[2], 16) + "," +
        parseInt(m[3], 16) + "," + alpha + ")";
    }
    return color.replace(/^hsl\((.*)\)$/, "hsla($1, " + alpha + ")");
  }

  /* The number formats of the run and compare charts, one implementation for every chart
   * of the UI: runstore_charts.js (workspace_charts.py loads it before this file). Tick
   * labels come from the ticks (RunstoreCharts.tickLabels: enough digits to tell them
   * apart, grouped or scientific when large or tiny), the y axis is as wide as its widest
   * label (axisSize), and a tooltip's numbers read as the run page's (valueText). */
  function charts() { return window.RunstoreCharts; }

  function ticks(u, splits, axisIdx, space, incr) {
    return charts().tickLabels(splits, incr);
  }

  function valueText(v) { return charts().valueText(v); }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) { e.textContent = text; }
    return e;
  }

  function fetchJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status + " from " + url.split("?")[0]); }
        return r.json();
      });
  }

  function loadSettings(key) {
    var s = { match: "", x: "step", group: "", metric: "", scatterX: "" };
    try {
      var saved = JSON.parse(window.localStorage.getItem(key) || "{}") || {};
      Object.keys(s).forEach(function (k) { if (typeof saved[k] === "string") { s[k] = saved[k]; } });
    } catch (e) { /* defaults */ }
    return s;
  }

  function saveSettings(key, s) {
    try { window.localStorage.setItem(key, JSON.stringify(s)); } catch (e) { /* private mode */ }
  }

  /* The page's URL as the JSON of at most MAX_RUNS rows (same filters, sort, search). */
  function tableJsonUrl() {
    var params = new URLSearchParams(window.location.search);
    ["_shape", "_size", "_facet", "_facet_array", "_facet_date", "_labels", "_col", "_nocol",
      "_json", "_extra"].forEach(function (k) { params.delete(k); });
    params.set("_shape", "array");
    params.set("_size", String(MAX_RUNS));
    params.set("_nofacet", "1");
    params.set("_nocount", "1");
    return window.location.pathname.replace(/\.json$/, "") + ".json?" + params.toString();
  }

  function matcher(text) {
    if (!text) { return { test: function () { return true; }, error: null }; }
    try {
      var re = new RegExp(text, "i");
      return { test: function (k) { return re.test(k); }, error: null };
    } catch (e) {
      var needle = text.toLowerCase();
      return { test: function (k) { return k.toLowerCase().indexOf(needle) >= 0; },
        error: "not a regular expression: matching it as text" };
    }
  }

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  /* The value a run has for a grouping choice. */
  function groupValue(run, by) {
    var v;
    if (by === "run_group" || by === "job_type") { v = run[by]; }
    else if (by.indexOf("config.") === 0) { v = run.config[by.slice(7)]; }
    return v === null || v === undefined ? "(none)" : String(v);
  }

  /* A series' points sorted by x, as two arrays. */
  function sorted(s) {
    var n = s.x.length, idx = new Array(n), i, ordered = true;
    for (i = 0; i < n; i++) { idx[i] = i; if (i && s.x[i] < s.x[i - 1]) { ordered = false; } }
    if (ordered) { return [s.x, s.y]; }
    idx.sort(function (a, b) { return s.x[a] - s.x[b] || a - b; });
    return [idx.map(function (j) { return s.x[j]; }), idx.map(function (j) { return s.y[j]; })];
  }

  /* y of a sorted series at x (linear between its points), null outside it. */
  function interpolate(xs, ys, x, hint) {
    var n = xs.length;
    if (!n || x < xs[0] || x > xs[n - 1]) { return { y: null, at: hint }; }
    var i = hint;
    while (i < n - 1 && xs[i + 1] < x) { i++; }
    if (xs[i] === x || i === n - 1) { return { y: ys[i], at: i }; }
    var x0 = xs[i], x1 = xs[i + 1];
    var y = x1 === x0 ? ys[i] : ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0);
    return { y: y, at: i };
  }

  function start() {
    var table = document.querySelector("table.rows-and-columns");
    var anchor = (table && (table.closest(".table-wrapper") || table)) ||
      document.querySelector(".rows-and-columns, p.zero-results, .zero-results");
    if (!anchor || !anchor.parentNode) { return; }
    var storageKey = STORAGE_PREFIX + window.location.pathname;
    var settings = loadSettings(storageKey);
    var dbUrl = window.location.pathname.replace(/\/[^\/]*$/, "");
    var seriesUrl = dbUrl + "/-/runstore/series.json";

    var state = {
      runs: [], keys: [], series: {}, hidden: {}, charts: [], colors: {}, loadedAt: null
    };

    /* -- the panel -------------------------------------------------------------------- */
    var panel = el("section", { "class": "runstore-workspace", "aria-label": "Charts of these runs" });
    var bar = el("div", { "class": "runstore-workspace-controls" });
    var matchLabel = el("label", {}, "Metrics ");
    var matchInput = el("input", { type: "search", "class": "runstore-ws-match",
      placeholder: "regex, e.g. loss|acc", size: "18" });
    matchInput.value = settings.match;
    matchLabel.appendChild(matchInput);
    var xLabel = el("label", {}, "x axis ");
    var xSelect = el("select", { "class": "runstore-ws-x" });
    xLabel.appendChild(xSelect);
    var groupLabel = el("label", {}, "Group by ");
    var groupSelect = el("select", { "class": "runstore-ws-group" });
    groupLabel.appendChild(groupSelect);
    var status = el("span", { "class": "runstore-ws-status", role: "status" }, "Loading charts…");
    [matchLabel, xLabel, groupLabel, status].forEach(function (c) { bar.appendChild(c); });
    var grid = el("div", { "class": "runstore-ws-grid" });
    var sweep = el("div", { "class": "runstore-ws-sweep" });
    var sweepBar = el("div", { "class": "runstore-workspace-controls" });
    var metricLabel = el("label", {}, "Summary metric ");
    var metricSelect = el("select", { "class": "runstore-ws-metric" });
    metricLabel.appendChild(metricSelect);
    var scatterLabel = el("label", {}, "Scatter against ");
    var scatterSelect = el("select", { "class": "runstore-ws-scatter-x" });
    scatterLabel.appendChild(scatterSelect);
    sweepBar.appendChild(metricLabel);
    sweepBar.appendChild(scatterLabel);
    var sweepPlots = el("div", { "class": "runstore-ws-sweep-plots" });
    var parallelBox = el("div", { "class": "runstore-ws-parallel" });
    var scatterBox = el("div", { "class": "runstore-ws-scatter" });
    sweepPlots.appendChild(parallelBox);
    sweepPlots.appendChild(scatterBox);
    sweep.appendChild(sweepBar);
    sweep.appendChild(sweepPlots);
    panel.appendChild(bar);
    panel.appendChild(grid);
    panel.appendChild(sweep);
    anchor.parentNode.insertBefore(panel, anchor);

    function setStatus(text) { status.textContent = text; }

    function fill(select, options, value) {
      select.replaceChildren();
      options.forEach(function (o) { select.appendChild(new Option(o[1], o[0])); });
      var values = options.map(function (o) { return o[0]; });
      select.value = values.indexOf(value) >= 0 ? value : (values[0] || "");
    }

    /* -- the table's rows: swatches ----------------------------------------------------- */
    function rowKey(tr, i, jsonKeys) {
      var cell = tr.querySelector("td.col-run_key");
      var text = cell ? cell.textContent.trim() : "";
      if (/^[0-9]+$/.test(text)) { return text; }
      var pick = tr.querySelector("input.runstore-pick");
      if (pick && /^[0-9]+$/.test(pick.value)) { return pick.value; }
      return jsonKeys[i] != null ? String(jsonKeys[i]) : null;
    }

    /* Where a row's swatch goes: its name cell, else its first cell that is shown (a
     * column chooser may hide run_key). */
    function swatchCell(tr) {
      var named = tr.querySelector("td.col-name");
      if (named && named.offsetParent !== null) { return named; }
      for (var i = 0; i < tr.cells.length; i++) {
        if (tr.cells[i].offsetParent !== null) { return tr.cells[i]; }
      }
      return tr.cells[0] || null;
    }

    function decorateRows(jsonKeys) {
      if (!table || !table.tBodies[0]) { return; }
      Array.prototype.forEach.call(table.tBodies[0].rows, function (tr, i) {
        var key = rowKey(tr, i, jsonKeys);
        if (key === null || !state.colors[key]) { return; }
        var swatch = tr.querySelector("button.runstore-swatch");
        if (!swatch) {
          swatch = el("button", { type: "button", "class": "runstore-swatch" });
          swatch.addEventListener("click", function (event) {
            event.preventDefault();
            toggle(key);
          });
          var cell = swatchCell(tr);
          if (cell) { cell.insertBefore(swatch, cell.firstChild); }
        }
        var hidden = !!state.hidden[key];
        swatch.style.backgroundColor = hidden ? "transparent" : state.colors[key];
        swatch.style.borderColor = state.colors[key];
        swatch.setAttribute("aria-pressed", hidden ? "false" : "true");
        swatch.title = (hidden ? "Show" : "Hide") + " this run on the charts";
        swatch.setAttribute("aria-label", swatch.title);
        tr.setAttribute("data-run-key", key);
        tr.classList.toggle("runstore-run-hidden", hidden);
      });
    }

    function toggle(key) {
      if (state.hidden[key]) { delete state.hidden[key]; } else { state.hidden[key] = true; }
      decorateRows(state.jsonKeys || []);
      drawCharts();
      drawSweep();
    }

    /* -- charts ------------------------------------------------------------------------- */
    function chartKeys() {
      var m = matcher(settings.match);
      var xMetric = settings.x.indexOf("metric:") === 0 ? settings.x.slice(7) : null;
      var keys = state.keys.filter(function (k) { return m.test(k) && k !== xMetric; });
      return { keys: keys.slice(0, MAX_CHARTS), more: Math.max(0, keys.length - MAX_CHARTS),
        error: m.error };
    }

    function xParams() {
      if (settings.x.indexOf("metric:") === 0) {
        return "&x=metric&x_metric=" + encodeURIComponent(settings.x.slice(7));
      }
      return settings.x === "step" ? "" : "&x=" + encodeURIComponent(settings.x);
    }

    function columnsFor(width) { return Math.max(2, Math.min(4, Math.floor(width / 380))); }

    function chartWidth() {
      var cols = columnsFor(grid.clientWidth || panel.clientWidth || 1200);
      grid.style.gridTemplateColumns = "repeat(" + cols + ", minmax(0, 1fr))";
      return Math.max(200, Math.floor((grid.clientWidth || 1200) / cols) - 16);
    }

    function visibleRuns() {
      return state.runs.filter(function (r) { return !state.hidden[String(r.run_key)]; });
    }

    function xLabelText() {
      if (settings.x.indexOf("metric:") === 0) { return settings.x.slice(7); }
      for (var i = 0; i < X_BUILTIN.length; i++) {
        if (X_BUILTIN[i][0] === settings.x) { return X_BUILTIN[i][1]; }
      }
      return "step";
    }

    /* A time x axis labelled in the UI's one time format (runstore_time.js). */
    function timeAxis(axis) {
      if (window.RunstoreTime) { axis.values = window.RunstoreTime.axisValues; }
      return axis;
    }

    function baseOptions(width) {
      return {
        width: width, height: 210,
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, points: { show: false } },
        scales: { x: { time: settings.x === "time" } },
        axes: [settings.x === "time" ? timeAxis({ label: xLabelText(), labelSize: 18, size: 44,
          space: 90 })
          : { label: xLabelText(), labelSize: 18, size: 36, values: ticks },
        { size: charts().axisSize, values: ticks }],
        series: [{}]
      };
    }

    /* One series per visible run, each with its own x values (uPlot mode 2). */
    function runChart(key, width) {
      var opts = baseOptions(width);
      opts.mode = 2;
      var data = [null];
      var points = 0, total = 0, sampled = false;
      visibleRuns().forEach(function (run) {
        var s = state.series[run.run_key + "\u0000" + key];
        if (!s || !s.x.length) { return; }
        var xy = sorted(s);
        data.push(xy);
        points += xy[0].length; total += s.total; sampled = sampled || s.downsampled;
        opts.series.push({
          label: run.name, stroke: state.colors[String(run.run_key)], width: 1.25,
          paths: window.uPlot.paths.linear(), points: { show: false },
          facets: [{ scale: "x", auto: true }, { scale: "y", auto: true }]
        });
      });
      return { opts: opts, data: data, points: points, total: total, sampled: sampled,
        lines: data.length - 1 };
    }

    /* Per group: mean, min and max over its visible runs at GRID x positions, drawn
     * as the mean line over a min-max band (uPlot bands; one shared x). */
    function groupChart(key, width) {
      var opts = baseOptions(width);
      var groups = {}, order = [];
      var lo = Infinity, hi = -Infinity, total = 0, sampled = false;
      visibleRuns().forEach(function (run) {
        var s = state.series[run.run_key + "\u0000" + key];
        if (!s || !s.x.length) { return; }
        var g = groupValue(run, settings.group);
        if (!groups[g]) { groups[g] = []; order.push(g); }
        var xy = sorted(s);
        groups[g].push(xy);
        lo = Math.min(lo, xy[0][0]); hi = Math.max(hi, xy[0][xy[0].length - 1]);
        total += s.total; sampled = sampled || s.downsampled;
      });
      var xs = [];
      if (lo <= hi) {
        for (var i = 0; i < GRID; i++) { xs.push(lo === hi ? lo : lo + (hi - lo) * i / (GRID - 1)); }
        if (lo === hi) { xs = [lo]; }
      }
      var data = [xs];
      opts.bands = [];
      order.forEach(function (g) {
        var color = state.groupColors[g];
        var mean = [], min = [], max = [], hints = groups[g].map(function () { return 0; });
        xs.forEach(function (x) {
          var sum = 0, n = 0, a = Infinity, b = -Infinity;
          groups[g].forEach(function (xy, r) {
            var v = interpolate(xy[0], xy[1], x, hints[r]);
            hints[r] = v.at;
            if (v.y === null || !isFinite(v.y)) { return; }
            sum += v.y; n++; a = Math.min(a, v.y); b = Math.max(b, v.y);
          });
          mean.push(n ? sum / n : null); min.push(n ? a : null); max.push(n ? b : null);
        });
        var base = data.length;
        data.push(max, min, mean);
        var label = g + " (" + groups[g].length + " run" + (groups[g].length === 1 ? "" : "s") + ")";
        opts.series.push({ label: label + " max", stroke: fade(color, 0.35), width: 0.5,
          points: { show: false } });
        opts.series.push({ label: label + " min", stroke: fade(color, 0.35), width: 0.5,
          points: { show: false } });
        opts.series.push({ label: label, stroke: color, width: 2, points: { show: false } });
        opts.bands.push({ series: [base, base + 1], fill: fade(color, 0.18) });
      });
      return { opts: opts, data: data, points: xs.length * order.length, total: total,
        sampled: sampled, lines: order.length, groups: order.length, grouped: true };
    }

    /* The nearest line to the cursor (within 24 px), named by a tooltip: its run (or
     * group), its value and x. */
    function nearest(xs, x) {
      var lo = 0, hi = xs.length - 1;
      while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (xs[mid] < x) { lo = mid; } else { hi = mid; } }
      return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
    }

    function hover(u, tip, built) {
      var left = u.cursor.left, top = u.cursor.top;
      if (left == null || left < 0 || top == null || top < 0) { tip.hidden = true; return; }
      var x = u.posToVal(left, "x"), best = null;
      for (var i = 1; i < u.series.length; i++) {
        var s = u.series[i];
        if (built.grouped && (i - 1) % 3 !== 2) { continue; }  // a group's mean only
        var xs = u.mode === 2 ? u.data[i][0] : u.data[0];
        var ys = u.mode === 2 ? u.data[i][1] : u.data[i];
        if (!xs || !xs.length) { continue; }
        var j = nearest(xs, x);
        if (ys[j] == null) { continue; }
        var dx = u.valToPos(xs[j], "x") - left, dy = u.valToPos(ys[j], "y") - top;
        var d = Math.sqrt(dx * dx + dy * dy);
        if (d < 24 && (!best || d < best.d)) { best = { d: d, s: s, x: xs[j], y: ys[j] }; }
      }
      if (!best) { tip.hidden = true; return; }
      tip.hidden = false;
      tip.replaceChildren();
      var swatch = el("span", { "class": "runstore-ws-tip-swatch" });
      swatch.style.backgroundColor = best.s.stroke();
      tip.appendChild(swatch);
      tip.appendChild(el("b", {}, best.s.label));
      var xText = settings.x === "time" && window.RunstoreTime
        ? window.RunstoreTime.local(best.x) : valueText(best.x);
      tip.appendChild(el("span", {}, " " + valueText(best.y) + " at " + xLabelText() + " " +
        xText));
      tip.style.left = Math.min(left + u.bbox.left / devicePixelRatio + 12, u.width - 160) + "px";
      tip.style.top = Math.max(0, top - 30) + "px";
    }

    function destroyCharts() {
      state.charts.forEach(function (c) { if (c.u) { c.u.destroy(); } });
      state.charts = [];
    }

    function drawCharts() {
      destroyCharts();
      var picked = chartKeys();
      grid.replaceChildren();
      if (!state.runs.length) { setStatus("No runs on this page to chart."); return; }
      if (!picked.keys.length) {
        setStatus(state.keys.length ? "No metric matches " + JSON.stringify(settings.match) + "."
          : "These runs logged no numeric metric.");
        return;
      }
      var width = chartWidth();
      picked.keys.forEach(function (key) {
        var figure = el("figure", { "class": "runstore-ws-chart", "data-key": key });
        var caption = el("figcaption", {});
        caption.appendChild(el("span", { "class": "runstore-ws-key" }, key));
        var note = el("span", { "class": "runstore-points" });
        caption.appendChild(note);
        var plot = el("div", { "class": "runstore-ws-plot" });
        figure.appendChild(caption);
        figure.appendChild(plot);
        grid.appendChild(figure);
        var built = settings.group ? groupChart(key, width) : runChart(key, width);
        var chart = { key: key, figure: figure, u: null, lines: built.lines,
          grouped: !!settings.group, groups: built.groups || 0 };
        state.charts.push(chart);
        if (!built.lines) {
          plot.appendChild(el("p", { "class": "runstore-empty" }, "No shown run has " + key + "."));
          return;
        }
        note.textContent = " · " + built.lines + (settings.group ? " group" : " run") +
          (built.lines === 1 ? "" : "s") + (built.sampled
            ? " · " + built.total.toLocaleString() + " points, downsampled" : "");
        var tip = el("div", { "class": "runstore-ws-tip", hidden: "" });
        built.opts.hooks = { setCursor: [function (u) { hover(u, tip, built); }] };
        chart.u = new window.uPlot(built.opts, built.data, plot);
        plot.appendChild(tip);
      });
      var text = state.runs.length + " run" + (state.runs.length === 1 ? "" : "s") +
        (state.truncated ? " (the first " + MAX_RUNS + " of this filter)" : "") + " · " +
        picked.keys.length + " chart" + (picked.keys.length === 1 ? "" : "s");
      if (picked.more) { text += " (" + picked.more + " more metrics match: narrow the regex)"; }
      if (picked.error) { text += " · " + picked.error; }
      setStatus(text);
      state.drawnAt = window.performance ? window.performance.now() : null;  // benchmarks
      panel.setAttribute("data-drawn", String(Date.now()));
    }

    /* -- parallel coordinates and scatter ------------------------------------------------ */
    function sweepChoices() {
      var summary = {}, config = {};
      state.runs.forEach(function (run) {
        Object.keys(run.summary).forEach(function (k) {
          if (isNumber(run.summary[k])) { summary[k] = true; }
        });
        Object.keys(run.config).forEach(function (k) {
          if (!config[k]) { config[k] = {}; }
          config[k][JSON.stringify(run.config[k])] = true;
        });
      });
      // the config keys whose values differ between runs (all keys when one run)
      var varying = Object.keys(config).filter(function (k) {
        return state.runs.length < 2 || Object.keys(config[k]).length > 1;
      }).sort();
      return { summary: Object.keys(summary).sort(), config: varying };
    }

    function drawSweep() {
      var choices = sweepChoices();
      if (!choices.summary.length || !choices.config.length) {
        sweep.hidden = true;
        return;
      }
      sweep.hidden = false;
      var metric = metricSelect.value, xKey = scatterSelect.value;
      var runs = visibleRuns();
      var axesKeys = choices.config.slice(0, 8);
      var axes = axesKeys.map(function (k) {
        return { name: k, type: window.RunstoreParallel.axisType(
          runs.map(function (r) { return r.config[k]; })) };
      });
      axes.push({ name: metric, type: "linear", metric: true });
      var goal = /loss|err|perplex|time|mse|mae/i.test(metric) ? "minimize" : "maximize";
      window.RunstoreParallel.parallel(parallelBox, {
        axes: axes, metric: metric, goal: goal,
        rows: runs.map(function (r) {
          var v = r.summary[metric];
          return { name: r.name, metric: isNumber(v) ? v : null,
            values: axesKeys.map(function (k) { return r.config[k] === undefined ? null : r.config[k]; })
              .concat([isNumber(v) ? v : null]) };
        })
      });
      window.RunstoreParallel.scatter(scatterBox, {
        x: xKey, y: metric,
        points: runs.map(function (r) {
          return { name: r.name, x: r.config[xKey] === undefined ? null : r.config[xKey],
            y: r.summary[metric], color: state.colors[String(r.run_key)] };
        })
      });
    }

    function fillSweepSelects() {
      var choices = sweepChoices();
      fill(metricSelect, choices.summary.map(function (k) { return [k, k]; }), settings.metric);
      fill(scatterSelect, choices.config.map(function (k) { return [k, k]; }), settings.scatterX);
    }

    /* -- loading -------------------------------------------------------------------------- */
    function assignColors() {
      state.colors = {};
      state.groupColors = {};
      var groupOrder = [];
      state.runs.forEach(function (run, i) {
        var color = colorAt(i);
        if (settings.group) {
          var g = groupValue(run, settings.group);
          if (!(g in state.groupColors)) {
            state.groupColors[g] = colorAt(groupOrder.length);
            groupOrder.push(g);
          }
          color = state.groupColors[g];
        }
        state.colors[String(run.run_key)] = color;
      });
    }

    function fillControls() {
      var xOptions = X_BUILTIN.slice();
      state.keys.forEach(function (k) { xOptions.push(["metric:" + k, "metric: " + k]); });
      fill(xSelect, xOptions, settings.x);
      settings.x = xSelect.value || "step";
      var groupOptions = [["", "nothing"], ["run_group", "group"], ["job_type", "job type"]];
      var configKeys = {};
      state.runs.forEach(function (r) { Object.keys(r.config).forEach(function (k) { configKeys[k] = true; }); });
      Object.keys(configKeys).sort().forEach(function (k) { groupOptions.push(["config." + k, "config " + k]); });
      fill(groupSelect, groupOptions, settings.group);
      settings.group = groupSelect.value;
      fillSweepSelects();
    }

    /* Points per run and metric: about one per pixel column for a few runs, half that
     * past 10 overlaid runs (M4 keeps each bucket's extremes either way). */
    function pointsFor(width, runs) {
      return Math.max(100, Math.min(1000, Math.round(width * (runs > 10 ? 0.5 : 1))));
    }

    var seq = 0;
    function loadSeries() {
      var mine = ++seq;
      var picked = chartKeys().keys;
      if (!state.runs.length || !picked.length) {
        state.series = {};
        drawCharts();
        return Promise.resolve();
      }
      setStatus("Loading " + picked.length + " metric" + (picked.length === 1 ? "" : "s") + "…");
      var width = chartWidth();
      var url = seriesUrl + "?runs=" + state.runs.map(function (r) { return r.run_key; }).join(",") +
        picked.map(function (k) { return "&metric=" + encodeURIComponent(k); }).join("") +
        "&points=" + pointsFor(width, state.runs.length) + xParams();
      return fetchJSON(url).then(function (data) {
        if (mine !== seq) { return; }
        state.series = {};
        data.series.forEach(function (s) { state.series[s.run_key + "\u0000" + s.key] = s; });
        drawCharts();
      });
    }

    function fail(error) {
      setStatus("Charts unavailable: " + error.message);
    }

    /* The run_keys of the table's rows, when the page shows every row the filter selects
     * (no next page) and each row names its run: no need to ask for the JSON. */
    function pageKeys() {
      if (!table || !table.tBodies[0] || document.querySelector('a[href*="_next="]')) {
        return null;
      }
      var rows = table.tBodies[0].rows, keys = [];
      if (rows.length > MAX_RUNS) { return null; }
      for (var i = 0; i < rows.length; i++) {
        var key = rowKey(rows[i], i, []);
        if (key === null) { return null; }
        if (keys.indexOf(Number(key)) < 0) { keys.push(Number(key)); }
      }
      return keys;
    }

    function tableKeys() {
      return fetchJSON(tableJsonUrl()).then(function (rows) {
        if (!Array.isArray(rows)) { rows = rows.rows || []; }
        var keys = [];
        rows.forEach(function (row) {
          var k = row && row.run_key;
          if (typeof k === "number" && keys.indexOf(k) < 0) { keys.push(k); }
        });
        state.truncated = rows.length >= MAX_RUNS;
        return keys;
      });
    }

    /* Runs, metric keys and (with no metric regex: the first metrics') series in one
     * request; with a regex, the series follow once the keys are known. */
    function load() {
      var known = pageKeys(), asked = null;
      (known ? Promise.resolve(known) : tableKeys()).then(function (keys) {
        state.jsonKeys = keys;
        if (!keys.length) { return { runs: [], keys: [], series: [] }; }
        var url = seriesUrl + "?runs=" + keys.join(",");
        if (!settings.match) {
          asked = settings.x;
          url += "&first=" + MAX_CHARTS + "&points=" + pointsFor(chartWidth(), keys.length) +
            xParams();
        }
        return fetchJSON(url);
      }).then(function (data) {
        state.runs = data.runs;
        state.keys = data.keys;
        fillControls();
        assignColors();
        decorateRows(state.jsonKeys);
        drawSweep();
        if (asked !== null && asked === settings.x) {
          seq++;
          state.series = {};
          data.series.forEach(function (s) { state.series[s.run_key + "\u0000" + s.key] = s; });
          drawCharts();
          return null;
        }
        return loadSeries();
      }).catch(fail);
    }

    /* -- controls --------------------------------------------------------------------------- */
    var matchTimer = null;
    matchInput.addEventListener("input", function () {
      clearTimeout(matchTimer);
      matchTimer = setTimeout(function () {
        settings.match = matchInput.value;
        saveSettings(storageKey, settings);
        loadSeries().catch(fail);
      }, 250);
    });
    xSelect.addEventListener("change", function () {
      settings.x = xSelect.value;
      saveSettings(storageKey, settings);
      loadSeries().catch(fail);
    });
    groupSelect.addEventListener("change", function () {
      settings.group = groupSelect.value;
      saveSettings(storageKey, settings);
      assignColors();
      decorateRows(state.jsonKeys || []);
      drawCharts();
      drawSweep();
    });
    metricSelect.addEventListener("change", function () {
      settings.metric = metricSelect.value;
      saveSettings(storageKey, settings);
      drawSweep();
    });
    scatterSelect.addEventListener("change", function () {
      settings.scatterX = scatterSelect.value;
      saveSettings(storageKey, settings);
      drawSweep();
    });
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        var width = chartWidth();
        state.charts.forEach(function (c) { if (c.u) { c.u.setSize({ width: width, height: 210 }); } });
      }, 150);
    });

    window.runstoreWorkspace = state;  // for the browser tests and the curious
    if (typeof window.uPlot === "undefined" || !charts()) {
      setStatus("The chart library did not load.");
      return;
    }
    load();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
