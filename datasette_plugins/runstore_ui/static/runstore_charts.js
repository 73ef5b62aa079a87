/* runstore charts: what the run page and the compare page share.
 *
 * RunstoreCharts.start(options) draws one uPlot chart per <figure class="runstore-chart"
 * data-key="..."> (when it scrolls into view), one series per run that has the key,
 * from each run's chart-data route (metric.json: steps and values, downsampled on the
 * server with M4; with times=1, which a time x axis asks for, also each point's step
 * timestamp and runtime).
 *
 * Chart settings (the .runstore-controls bar) apply to every chart of the page and
 * are kept in localStorage, so a reload, another run or the compare page keeps them:
 * - smoothing: a debiased exponential moving average (TensorBoard's) of the points
 *   drawn, weight 0-0.99; the raw line stays faint behind the smoothed one;
 * - log scale: the y scale becomes logarithmic (uPlot distr 3); values <= 0 are left
 *   out (gaps), and a chart with no positive value stays linear and says so;
 * - x axis: step, relative time (the run's runtime, s) or wall-clock time.
 * Drag to zoom fetches the exact points of the visible range (a time range is turned
 * into the step range of the points drawn) and draws them at once; a double click goes
 * back.
 *
 * What a chart shows: y tick labels formatted from the ticks (tickLabels: enough digits
 * to tell them apart, scientific when tiny or huge) on an axis as wide as its widest
 * label; one crosshair shared by the charts of a page (uPlot cursor sync, key
 * options.syncKey); a tooltip by the cursor; a legend that, when not hovered, reads each
 * run's last, min and max; lineage markers (options.markersFor) as dashed lines.
 *
 * Live runs: while any run of the page is live (running, its writer beating), its
 * status route is polled every few seconds (not while the page is hidden); when its
 * last step moved, each drawn chart fetches only the points after the last step it
 * has (min_step) and appends them. Polling stops when no run is live any more (after
 * a last refresh) or after repeated errors. Run-supplied text only ever reaches the
 * page as text (textContent; uPlot sets legend labels with textContent).
 *
 * RunstoreCharts.fetchJSON(url) is the JSON fetch of the run page's other script
 * (runstore_run_output.js) too; tickLabels(splits, incr) (linear axes), logTickLabels(splits)
 * (log axes) and valueText(v) are the number formats, axisSize(u, values, axisIdx) a uPlot
 * axis `size`, SYNC_KEY the default cursor sync key: the one implementation for every
 * chart of the UI (the workspace charts, runstore_workspace.js, format with them; loading
 * this file draws nothing, so any page may load it first).
 */
(function () {
  "use strict";

  var STORAGE_KEY = "runstore:chart-settings";
  var POLL_MS = 3000;
  var MAX_POLL_ERRORS = 5;
  var X_FIELDS = { step: "steps", runtime: "runtimes", time: "timestamps" };
  var X_LABELS = { step: "step", runtime: "runtime", time: "time" };
  var TIME_FIELDS = ["timestamps", "runtimes"];
  var SYNC_KEY = "runstore";  // uPlot.sync: the charts of a page share one crosshair

  function readSettings() {
    var settings = { smooth: 0, log: false, x: "step" };
    try {
      var saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}") || {};
      var smooth = Number(saved.smooth);
      if (isFinite(smooth) && smooth >= 0 && smooth <= 0.99) { settings.smooth = smooth; }
      settings.log = saved.log === true;
      if (Object.prototype.hasOwnProperty.call(X_FIELDS, saved.x)) { settings.x = saved.x; }
    } catch (e) { /* no storage here, or not ours: the defaults */ }
    return settings;
  }

  function saveSettings(settings) {
    try { window.localStorage.setItem(STORAGE_KEY, JSON.stringify(settings)); } catch (e) { }
  }

  function fetchJSON(url) {
    return fetch(url, {
      headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
  }

  /* The points to ask for a chart `width` px wide: 4 per pixel column (M4), at most the
   * page data's maxPoints (the server's DEFAULT_POINTS, views/run.py). */
  function pointsFor(page, width) {
    return Math.max(200, Math.min(page.maxPoints, Math.round(width) * 4));
  }

  /* Chart data of one metric of one run; `times`: with each point's step time and
   * runtime (else those fields are null). */
  function fetchMetric(run, key, points, minStep, maxStep, times) {
    var params = new URLSearchParams({ key: key, points: String(points) });
    if (minStep != null) { params.set("min_step", String(minStep)); }
    if (maxStep != null) { params.set("max_step", String(maxStep)); }
    if (times) { params.set("times", "1"); }
    return fetchJSON(run.metricUrl + "?" + params.toString()).then(function (data) {
      TIME_FIELDS.forEach(function (field) { data[field] = data[field] || null; });
      return data;
    });
  }

  /* The points the run's newest rewind archived (metric.json?archived=1), or null. */
  function fetchArchived(run, key, points) {
    if (!run.archived) { return Promise.resolve(null); }
    var params = new URLSearchParams({ key: key, points: String(points), archived: "1" });
    return fetchJSON(run.metricUrl + "?" + params.toString()).then(function (data) {
      return data.steps.length ? data : null;
    }, function () { return null; });  // the live history matters; the archive is extra
  }

  function hasTimes(results) {
    return results.every(function (d) { return d.timestamps && d.runtimes; });
  }

  /* A debiased exponential moving average: last = w * last + (1 - w) * v, divided by
   * 1 - w^n so the first points are not pulled toward zero. Gaps stay gaps. */
  function ema(values, weight) {
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v == null || !isFinite(v)) { out[i] = null; continue; }
      last = last * weight + (1 - weight) * v;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  function positive(values) {
    return values.map(function (v) { return v != null && v > 0 ? v : null; });
  }

  /* One run's columns for uPlot: [x, raw] or [x, raw, smoothed], points without an x
   * value (a step without a time) left out, in x order. */
  function runColumns(data, settings, log) {
    var xs = data[X_FIELDS[settings.x]], order = [], i;
    for (i = 0; i < data.values.length; i++) {
      if (xs[i] != null && isFinite(xs[i])) { order.push(i); }
    }
    for (i = 1; i < order.length; i++) {
      if (xs[order[i]] < xs[order[i - 1]]) {
        order.sort(function (a, b) { return xs[a] - xs[b] || a - b; });
        break;
      }
    }
    var x = order.map(function (j) { return xs[j]; });
    var y = order.map(function (j) { return data.values[j]; });
    var columns = [x, y];
    if (settings.smooth > 0) { columns.push(ema(y, settings.smooth)); }
    if (log) { columns = [x].concat(columns.slice(1).map(positive)); }
    return columns;
  }

  function hasPositive(results) {
    return results.some(function (d) {
      return d.values.some(function (v) { return v != null && v > 0; });
    });
  }

  /* Axis text and grid colours for the page's colour scheme (dark mode follows the
   * system, as runstore.css does). */
  function axisInk() {
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return dark ? { text: "#c0c4ca", grid: "rgba(255,255,255,0.09)" }
      : { text: "#333", grid: "rgba(0,0,0,0.07)" };
  }

  function fade(color, alpha) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
    if (!m) { return color; }
    return "rgba(" + parseInt(m[1], 16) + "," + parseInt(m[2], 16) + "," +
      parseInt(m[3], 16) + "," + alpha + ")";
  }

  /* Seconds as 1.25s, 4m05s or 2h03m; `resolution` (an axis' tick increment) sets how
   * many decimals seconds get, so ticks 0.01 s apart do not all read "0s". */
  function durationText(seconds, resolution) {
    if (seconds == null || !isFinite(seconds)) { return ""; }
    var sign = seconds < 0 ? "-" : "", s = Math.abs(seconds);
    if (s < 60) {
      var decimals = resolution > 0
        ? Math.max(0, Math.min(6, Math.ceil(-Math.log10(resolution) - 1e-9)))
        : (s < 1 ? 3 : (s < 10 ? 2 : 1));
      return sign + s.toFixed(decimals) + "s";
    }
    var whole = Math.round(s), h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60);
    var sec = whole % 60;
    if (h) { return sign + h + "h" + (m < 10 ? "0" : "") + m + "m"; }
    return sign + m + "m" + (sec < 10 ? "0" : "") + sec + "s";
  }

  /* Unix seconds as local time, 2026-11-30 01:02:03: runstore_time.js, the UI's one
   * time format (loaded before this file). */
  function timeText(seconds) {
    return window.RunstoreTime ? window.RunstoreTime.local(seconds) : "";
  }

  /* Labels of a log axis' ticks (uPlot gives 1, 2, ... 9 times each power of ten, with
   * float noise such as 0.00030000000000000003, and null for the ticks it leaves
   * unlabelled): each tick to 6 significant digits, the noise gone; plain from 0.001 to
   * below a million (grouped from 10,000), else scientific without "+" (1e-4, 3e-8,
   * 1e12). Pure: tests/test_chart_format.py runs it in node. */
  function logTickLabels(splits) {
    return splits.map(function (v) {
      if (v == null || !isFinite(v)) { return ""; }
      if (v === 0) { return "0"; }
      var clean = Number(v.toPrecision(6)), a = Math.abs(clean);
      if (a >= 1e-3 && a < 1e6) {
        return a >= 1e4 ? clean.toLocaleString("en-US", { maximumFractionDigits: 6 })
          : String(clean);
      }
      return clean.toExponential().replace("e+", "e");
    });
  }

  /* Scientific notation without JS's "+" in exponents: 1.5e-4, 1.2e6. */
  function expText(v, digits) {
    return v.toExponential(digits).replace("e+", "e");
  }

  function fixedText(v, decimals) {
    if (Math.abs(v) >= 1e4) {  // grouped: 1,250,000 (one locale, so tests can pin it)
      return v.toLocaleString("en-US", {
        minimumFractionDigits: decimals, maximumFractionDigits: decimals
      });
    }
    return v.toFixed(decimals);
  }

  /* Labels of a linear axis' ticks, formatted from the ticks themselves: fixed notation
   * with as many decimals as the tick increment needs when the largest |tick| is in
   * [1e-3, 1e7), else scientific with as many mantissa digits as tell the ticks apart.
   * Every label reads back within 1% of an increment of its tick, and distinct ticks get
   * distinct labels (1.5e-4..4.5e-4, 1,000,000..1,612,000, 22.850..22.875). A tick within
   * a billionth of an increment of 0 is "0". Pure: tests/test_chart_format.py runs it in
   * node. */
  function tickLabels(splits, incr) {
    var finite = splits.filter(function (v) { return v != null && isFinite(v); });
    if (!finite.length) { return splits.map(function () { return ""; }); }
    var step = incr > 0 ? incr : 0, i;
    if (!step) {
      var sorted = finite.slice().sort(function (a, b) { return a - b; });
      for (i = 1; i < sorted.length; i++) {
        var d = sorted[i] - sorted[i - 1];
        if (d > 0 && (!step || d < step)) { step = d; }
      }
    }
    var mag = 0;
    finite.forEach(function (v) { mag = Math.max(mag, Math.abs(v)); });
    if (!step) { step = mag || 1; }
    var zero = step * 1e-9;
    var scientific = mag >= 1e7 || (mag > 0 && mag < 1e-3);
    function format(v, digits) {
      if (v == null || !isFinite(v)) { return ""; }
      if (Math.abs(v) <= zero) { return "0"; }
      return scientific ? expText(v, digits) : fixedText(v, digits);
    }
    function good(labels, digits) {
      var seen = {};
      for (var j = 0; j < splits.length; j++) {
        var v = splits[j];
        if (v == null || !isFinite(v)) { continue; }
        var back = Number(labels[j].replace(/,/g, ""));
        if (!(Math.abs(back - v) <= step * 0.01 + zero) || seen[labels[j]]) { return false; }
        seen[labels[j]] = true;
      }
      return true;
    }
    var labels = null;
    for (var digits = 0; digits <= 16; digits++) {
      labels = splits.map(function (v) { return format(v, digits); });
      if (good(labels, digits)) { return labels; }
    }
    return labels;
  }

  /* One value as a legend or tooltip shows it: 6 significant digits, scientific when
   * tiny or huge; integers as they are. */
  function valueText(v) {
    if (v == null || !isFinite(v)) { return v == null ? "" : String(v); }
    var a = Math.abs(v);
    if (v === Math.round(v) && a < 1e7) { return fixedText(v, 0); }
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) { return expText(v, 5).replace(/\.?0+e/, "e"); }
    if (a >= 1e4) {
      return Number(v.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 6 });
    }
    return String(Number(v.toPrecision(6)));
  }

  /* The width (css px) a y axis needs for its labels: measured with the axis font. */
  function axisSize(u, values, axisIdx) {
    if (!values || !values.length) { return 50; }
    var axis = u.axes[axisIdx], font = axis && axis.font && axis.font[0];
    var widest = 0, ratio = window.devicePixelRatio || 1;
    if (font && u.ctx) {
      u.ctx.save();
      u.ctx.font = font;
      values.forEach(function (text) {
        widest = Math.max(widest, u.ctx.measureText(String(text)).width / ratio);
      });
      u.ctx.restore();
    } else {
      values.forEach(function (text) { widest = Math.max(widest, String(text).length * 7); });
    }
    return Math.ceil(widest) + 20;  // tick (10) and gap (5) + a margin
  }

  function message(plot, text) {
    plot.textContent = "";
    var p = document.createElement("p");
    p.className = "runstore-empty";
    p.textContent = text;
    plot.appendChild(p);
  }

  function lastStep(data) {
    return data.steps.length ? data.steps[data.steps.length - 1] : null;
  }

  function append(data, more) {
    data.steps = data.steps.concat(more.steps);
    data.values = data.values.concat(more.values);
    TIME_FIELDS.forEach(function (field) {  // times kept only if both halves have them
      data[field] = data[field] && more[field] ? data[field].concat(more[field]) : null;
    });
    data.total += more.total;
  }

  function makeChart(page, figure, index) {
    var key = figure.getAttribute("data-key");
    var plot = figure.querySelector(".runstore-plot");
    var runs = page.runs.filter(function (run) { return run.keys.indexOf(key) >= 0; });
    var chart = {
      figure: figure, key: key, runs: runs, loaded: false, u: null, built: null,
      overview: null, current: null, zoomed: false, range: null, full: null, timer: null,
      loading: false, archive: null
    };

    function width() { return Math.max(200, plot.clientWidth || 400); }
    function wantTimes() { return page.settings.x !== "step"; }

    function note() {
      var el = figure.querySelector(".runstore-points");
      if (!el) {
        el = document.createElement("span");
        el.className = "runstore-points";
        figure.querySelector("figcaption").appendChild(el);
      }
      var shown = 0, total = 0, sampled = false;
      chart.current.forEach(function (d) {
        shown += d.steps.length; total += d.total; sampled = sampled || d.downsampled;
      });
      var text = " · " + shown.toLocaleString() +
        (sampled ? " of " + total.toLocaleString() + " points (downsampled)" : " points");
      if (page.settings.log && chart.current.length && !hasPositive(chart.current)) {
        text += " · no positive values: linear scale";
      }
      el.textContent = text;
    }

    function xRange(results) {
      var lo = Infinity, hi = -Infinity;
      results.forEach(function (d) {
        var xs = runColumns(d, { x: page.settings.x, smooth: 0 }, false)[0];
        if (xs.length) { lo = Math.min(lo, xs[0]); hi = Math.max(hi, xs[xs.length - 1]); }
      });
      return lo <= hi ? [lo, hi] : null;
    }

    /* The step range [lo, hi] whose points cover the x range [min, max]: on a time
     * axis, the steps of the points just outside it, from the points drawn. */
    function stepRange(min, max) {
      if (page.settings.x === "step") { return [Math.floor(min), Math.ceil(max)]; }
      var field = X_FIELDS[page.settings.x], lo = Infinity, hi = -Infinity;
      chart.current.forEach(function (d) {
        var xs = d[field], n = d.steps.length, first = null, last = null;
        for (var i = 0; i < n; i++) {
          if (xs[i] == null) { continue; }
          if (xs[i] < min) { first = i; continue; }  // the last point left of the range
          if (first === null) { first = i; }
          last = i;
          if (xs[i] > max) { break; }  // the first point right of it
        }
        if (first !== null && last !== null) {
          lo = Math.min(lo, d.steps[first]);
          hi = Math.max(hi, d.steps[last]);
        }
      });
      return lo <= hi ? [lo, hi] : null;
    }

    function zoomTo(u, min, max) {
      var sampled = chart.overview.some(function (d) { return d.downsampled; });
      var range = stepRange(min, max);
      if (!sampled || !range) { return; }
      var exact = chart.current.every(function (d) { return !d.downsampled; });
      if (chart.zoomed && exact && chart.range &&
          chart.range[0] <= range[0] && range[1] <= chart.range[1]) { return; }
      Promise.all(runs.map(function (run) {
        return fetchMetric(run, key, pointsFor(page, u.width), range[0], range[1], wantTimes());
      })).then(function (results) {
        if (u !== chart.u || u.scales.x.min !== min || u.scales.x.max !== max) { return; }
        chart.current = results;
        chart.range = range;
        chart.zoomed = true;
        chart.zoomX = [min, max];
        render(false);
        // setData without a scale reset keeps the index range of the old (overview)
        // data: the chart drew ~16 of 1,512 points until a resize. Setting the same x
        // range again recomputes it from the new data, now.
        if (chart.u === u) {
          chart.quiet = true;
          try { u.setScale("x", { min: min, max: max }); } finally { chart.quiet = false; }
        }
      });
    }

    /* last, min and max of the points at hand of run `i` (M4 keeps every extreme). */
    function runStats(i) {
      var d = chart.current && chart.current[i], out = { last: null, min: null, max: null };
      if (!d) { return out; }
      d.values.forEach(function (v) {
        if (v == null || !isFinite(v)) { return; }
        out.last = v;
        if (out.min == null || v < out.min) { out.min = v; }
        if (out.max == null || v > out.max) { out.max = v; }
      });
      return out;
    }

    /* A y series' legend value: the hovered point's value, else (cursor away) its run's
     * last, min and max, so the legend reads well without hovering. */
    function legendValue(runIndex) {
      return function (u, v, seriesIdx, idx) {
        if (idx != null) { return v == null ? "" : valueText(v); }
        var st = runStats(runIndex);
        if (st.last == null) { return ""; }
        return "last " + valueText(st.last) + " · min " + valueText(st.min) +
          " · max " + valueText(st.max);
      };
    }

    function xText(settings, v) {
      if (v == null) { return ""; }
      if (settings.x === "runtime") { return durationText(v); }
      if (settings.x === "time") { return timeText(v); }
      return valueText(v);
    }

    /* The tooltip by the cursor: x, then each series' value at the hovered point (text
     * only). Shown on the chart under the mouse, not on the ones synced to it. */
    function showTooltip(u) {
      var tip = chart.tip, idx = u.cursor.idx, settings = page.settings;
      if (!tip) { return; }
      if (idx == null || !chart.hover || u.cursor.left == null || u.cursor.left < 0) {
        tip.style.display = "none";
        return;
      }
      tip.textContent = "";
      var head = document.createElement("div");
      head.className = "runstore-tooltip-x";
      head.textContent = X_LABELS[settings.x] + " " + xText(settings, u.data[0][idx]);
      tip.appendChild(head);
      var rows = 0;
      for (var si = 1; si < u.series.length; si++) {
        var v = u.data[si][idx], sr = u.series[si];
        if (v == null || !sr.show) { continue; }
        var row = document.createElement("div");
        var swatch = document.createElement("span");
        swatch.className = "runstore-tooltip-swatch";
        swatch.style.background = typeof sr.stroke === "function" ? sr.stroke(u, si) : sr.stroke;
        row.appendChild(swatch);
        row.appendChild(document.createTextNode(sr.label + " " + valueText(v)));
        tip.appendChild(row);
        rows++;
      }
      if (!rows) { tip.style.display = "none"; return; }
      tip.style.display = "block";
      var left = u.cursor.left + 14, top = Math.max(0, u.cursor.top - 10);
      var width = tip.offsetWidth, over = u.over.clientWidth;
      if (left + width > over) { left = Math.max(0, u.cursor.left - 14 - width); }
      tip.style.left = left + "px";
      tip.style.top = top + "px";
    }

    /* The x value of `step` for run i on the page's x axis: the step itself, or the
     * time of the first point at or after it. */
    function markerX(i, step) {
      if (page.settings.x === "step") { return step; }
      var d = chart.current[i], xs = d && d[X_FIELDS[page.settings.x]];
      if (!xs) { return null; }
      for (var j = 0; j < d.steps.length; j++) {
        if (d.steps[j] >= step && xs[j] != null) { return xs[j]; }
      }
      return null;
    }

    /* Lineage markers (page.markersFor(run): [{step, label}]): a dashed line at a fork
     * or rewind step, labelled; the steps drawn are in the figure's data-markers. */
    function drawMarkers(u) {
      var drawn = [];
      if (!page.markersFor) { return; }
      var ctx = u.ctx, ratio = window.devicePixelRatio || 1, box = u.bbox;
      runs.forEach(function (run, i) {
        (page.markersFor(run) || []).forEach(function (marker) {
          var xv = markerX(i, marker.step);
          if (xv == null) { return; }
          var x = Math.round(u.valToPos(xv, "x", true));
          if (x < box.left || x > box.left + box.width) { return; }
          ctx.save();
          ctx.strokeStyle = marker.color || "#b26b00";
          ctx.fillStyle = marker.color || "#b26b00";
          ctx.lineWidth = ratio;
          ctx.setLineDash([4 * ratio, 3 * ratio]);
          ctx.beginPath();
          ctx.moveTo(x + 0.5, box.top);
          ctx.lineTo(x + 0.5, box.top + box.height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.font = (11 * ratio) + "px sans-serif";
          ctx.textBaseline = "top";
          var text = marker.label || "";
          var w = ctx.measureText(text).width;
          ctx.fillText(text, x + 4 * ratio + w > box.left + box.width ? x - 4 * ratio - w
            : x + 4 * ratio, box.top + 2 * ratio);
          ctx.restore();
          drawn.push(marker.step);
        });
      });
      figure.setAttribute("data-markers", drawn.join(","));
    }

    function options(settings, log, archived) {
      var series = [{
        label: X_LABELS[settings.x],
        value: function (u, v, si, idx) { return idx == null ? "" : xText(settings, v); }
      }];
      var count = chart.current.reduce(function (n, d) { return n + d.steps.length; }, 0);
      // No spanGaps: a null (a value a log scale cannot show) is a gap; the holes
      // uPlot.join leaves where runs have different x values are undefined, which
      // lines cross.
      runs.forEach(function (run, i) {
        var color = page.colorFor(run, index), label = page.labelFor(run, key);
        if (settings.smooth > 0) {
          series.push({ label: label + " (raw)", stroke: fade(color, 0.28), width: 1,
                        points: { show: false },
                        value: function (u, v, si, idx) { return idx == null ? "" : valueText(v); } });
          series.push({ label: label, stroke: color, width: 2, points: { show: false },
                        value: legendValue(i) });
        } else {
          series.push({ label: label, stroke: color, width: 1.5, value: legendValue(i),
                        points: { show: count < 60 * runs.length, size: 5 } });
        }
      });
      (archived || []).forEach(function (a) {  // a rewind's archived tail: faint, dashed
        var run = runs[a.run], d = chart.archive[a.run];
        series.push({
          label: page.labelFor(run, key) + " (archived)", width: 1, dash: [4, 3],
          stroke: fade(page.colorFor(run, index), 0.35), points: { show: false },
          value: function (u, v, si, idx) {
            if (idx != null) { return v == null ? "" : valueText(v); }
            return d.total.toLocaleString("en-US") + " points a rewind to step " +
              d.rewind_step + " archived";
          }
        });
      });
      var ink = axisInk();
      var xAxis = { label: X_LABELS[settings.x], stroke: ink.text, grid: { stroke: ink.grid },
                    ticks: { stroke: ink.grid } };
      if (settings.x === "runtime") {
        xAxis.values = function (u, splits, axisIdx, space, incr) {
          return splits.map(function (v) { return durationText(v, incr); });
        };
      } else if (settings.x === "step") {
        xAxis.values = function (u, splits, axisIdx, space, incr) {
          return tickLabels(splits, incr);
        };
      } else if (window.RunstoreTime) {  // wall-clock time: the UI's one time format
        xAxis.values = window.RunstoreTime.axisValues;
      }
      var yAxis = { size: axisSize, stroke: ink.text, grid: { stroke: ink.grid },
                    ticks: { stroke: ink.grid } };
      // uPlot's default labels round 0.00015 to "0" and 22.875 gets clipped: ours come
      // from the ticks (tickLabels) and the axis is as wide as its widest label.
      yAxis.values = log ? function (u, splits) { return logTickLabels(splits); }
        : function (u, splits, axisIdx, space, incr) { return tickLabels(splits, incr); };
      return {
        width: width(),
        height: page.height,
        legend: { show: true },
        scales: { x: { time: settings.x === "time" }, y: log ? { distr: 3, log: 10 } : {} },
        axes: [xAxis, yAxis],
        series: series,
        cursor: {
          sync: { key: page.syncKey, setSeries: false },
          drag: { x: true, y: false },
          bind: {
            dblclick: function (u, target, handler) {
              return function (event) {
                if (chart.zoomed) {
                  chart.zoomed = false;
                  chart.range = null;
                  chart.zoomX = null;
                  chart.current = chart.overview;
                  render(true);
                } else {
                  handler(event);
                }
                return null;
              };
            }
          }
        },
        hooks: {
          init: [function (u) {
            var tip = document.createElement("div");
            tip.className = "runstore-tooltip";
            tip.style.display = "none";
            u.over.appendChild(tip);
            chart.tip = tip;
            u.over.addEventListener("mouseenter", function () { chart.hover = true; });
            u.over.addEventListener("mouseleave", function () {
              chart.hover = false;
              tip.style.display = "none";
            });
          }],
          setCursor: [showTooltip],
          draw: [drawMarkers],
          setScale: [function (u, scaleKey) {
            if (scaleKey !== "x" || u !== chart.u || chart.quiet) { return; }
            var min = u.scales.x.min, max = u.scales.x.max, full = chart.full;
            if (chart.zoomed && chart.zoomX && chart.zoomX[0] === min && chart.zoomX[1] === max) {
              return;
            }
            if (min == null || max == null || !full || (min <= full[0] && max >= full[1])) {
              return;
            }
            clearTimeout(chart.timer);
            chart.timer = setTimeout(function () { zoomTo(u, min, max); }, 150);
          }]
        }
      };
    }

    function destroy() {
      if (chart.u) { chart.u.destroy(); chart.u = null; }
      chart.built = null;
    }

    /* [{run (index), table}] of the archived tails to draw (step x axis only: the
     * archive keeps no times the chart fetches). */
    function archivedTables(settings, log) {
      if (!chart.archive || settings.x !== "step") { return []; }
      var out = [];
      chart.archive.forEach(function (d, i) {
        if (d) { out.push({ run: i, table: runColumns(d, { x: "step", smooth: 0 }, log) }); }
      });
      return out;
    }

    /* (Re)draw from chart.current with the page's settings: setData when the chart's
     * shape (x axis, log, smoothing on/off) is unchanged, else a new uPlot. */
    function render(resetScales) {
      var settings = page.settings;
      if (wantTimes() && !hasTimes(chart.overview.concat(chart.current))) {
        if (!chart.loading) { chart.load(); }  // drawn by step so far: fetch the times
        return;
      }
      var count = chart.current.reduce(function (n, d) { return n + d.steps.length; }, 0);
      if (!count) {
        destroy();
        message(plot, "No numeric values.");
        return;
      }
      var log = settings.log && hasPositive(chart.current);
      var tables = chart.current.map(function (d) { return runColumns(d, settings, log); });
      var archived = archivedTables(settings, log);
      tables = tables.concat(archived.map(function (a) { return a.table; }));
      var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      note();
      if (!data[0].length) {
        destroy();
        message(plot, "No " + X_LABELS[settings.x] + " recorded for these points.");
        return;
      }
      chart.full = xRange(chart.overview);
      var shape = [settings.x, log, settings.smooth > 0,
                   archived.map(function (a) { return a.run; }).join(",")].join("|");
      if (chart.u && chart.built === shape) {
        chart.u.setData(data, resetScales);
        return;
      }
      destroy();
      plot.textContent = "";
      chart.u = new uPlot(options(settings, log, archived), data, plot);
      chart.built = shape;
    }

    chart.load = function () {
      var w = width(), times = wantTimes();
      chart.loading = true;
      var archive = chart.archive ? Promise.resolve(chart.archive) : Promise.all(
        runs.map(function (run) { return fetchArchived(run, key, pointsFor(page, w)); }));
      return Promise.all(runs.map(function (run) {
        return fetchMetric(run, key, pointsFor(page, w), null, null, times);
      }).concat([archive])).then(function (results) {
        chart.archive = results.pop();
        chart.loading = false;
        if (times && !hasTimes(results)) { throw new Error("no times in the chart data"); }
        chart.overview = chart.current = results;
        chart.zoomed = false;
        chart.range = null;
        chart.loaded = true;
        render(true);
      }).catch(function (error) {
        chart.loading = false;
        message(plot, "Could not load " + key + ": " + error.message);
      });
    };

    chart.redraw = function () {
      if (chart.loaded) { render(!chart.zoomed); }
    };

    chart.resize = function () {
      if (chart.u) { chart.u.setSize({ width: width(), height: page.height }); }
    };

    /* New points of `run` (a live run): fetch those after the last step this chart
     * has, append them (re-fetch the overview when they come downsampled or the
     * chart grew past twice what it draws). */
    chart.refresh = function (run) {
      var i = runs.indexOf(run);
      if (!chart.loaded || chart.loading || i < 0) { return Promise.resolve(); }
      var have = chart.overview[i], after = lastStep(have), times = wantTimes();
      var points = pointsFor(page, width());
      return fetchMetric(run, key, points, after == null ? null : after + 1, null, times)
        .then(function (more) {
          if (!more.steps.length) { return false; }
          if (more.downsampled || have.steps.length + more.steps.length > 2 * points) {
            return fetchMetric(run, key, points, null, null, times).then(function (fresh) {
              chart.overview = chart.overview.slice();
              chart.overview[i] = fresh;
              if (!chart.zoomed) { chart.current = chart.overview; }
              return true;
            });
          }
          append(have, more);
          return true;
        }).then(function (changed) {
          if (changed && !chart.zoomed) { render(true); }
        });
    };

    return chart;
  }

  /* The badge cells.py's live_badge renders on the server (states as format.STATES): one
   * markup in two languages, kept alike by hand. */
  function stateBadge(state, live) {
    var badge = document.createElement("span");
    var known = ["running", "finished", "failed", "crashed"].indexOf(state) >= 0;
    badge.className = "runstore-state runstore-state-" + (known ? state : "other");
    badge.textContent = state;
    if (!live) { return badge; }
    var wrap = document.createElement("span");
    wrap.className = "runstore-live";
    wrap.title = "Live: its process is still logging";
    var dot = document.createElement("span");
    dot.className = "runstore-live-dot";
    dot.setAttribute("aria-hidden", "true");
    wrap.appendChild(dot);
    wrap.appendChild(badge);
    return wrap;
  }

  function showStatus(run, status) {
    var slots = document.querySelectorAll("[data-runstore-state]");
    Array.prototype.forEach.call(slots, function (slot) {
      if (slot.getAttribute("data-runstore-state") !== String(run.runKey)) { return; }
      slot.textContent = "";
      slot.appendChild(stateBadge(status.state, status.live));
    });
    var runtimes = document.querySelectorAll("[data-runstore-runtime]");
    Array.prototype.forEach.call(runtimes, function (el) {
      if (el.getAttribute("data-runstore-runtime") === String(run.runKey) &&
          status.runtime_text) {
        el.textContent = status.runtime_text;
      }
    });
    var steps = document.querySelectorAll("[data-runstore-steps]");
    Array.prototype.forEach.call(steps, function (el) {
      if (el.getAttribute("data-runstore-steps") === String(run.runKey) && status.step_count) {
        el.textContent = String(status.step_count);
      }
    });
  }

  function liveText(text) {
    var el = document.querySelector(".runstore-live-status");
    if (el) { el.textContent = text; }
  }

  function startPolling(page) {
    var live = page.runs.filter(function (run) { return run.live && run.statusUrl; });
    if (!live.length) { return; }
    var errors = 0, timer = null, busy = false, stopped = false;
    liveText("Live: new points appear every " + POLL_MS / 1000 + " s");

    function schedule() {
      clearTimeout(timer);
      if (!stopped && !document.hidden) { timer = setTimeout(tick, POLL_MS); }
    }

    function stop(text) {
      stopped = true;
      clearTimeout(timer);
      liveText(text);
    }

    function refresh(moved) {
      var jobs = [];
      page.charts.forEach(function (chart) {
        moved.forEach(function (run) { jobs.push(chart.refresh(run)); });
      });
      return Promise.all(jobs);
    }

    function tick() {
      if (stopped || busy || document.hidden) { return; }
      busy = true;
      var polled = live.filter(function (run) { return run.live; });
      Promise.all(polled.map(function (run) { return fetchJSON(run.statusUrl); }))
        .then(function (statuses) {
          var moved = [];
          statuses.forEach(function (status, i) {
            var run = polled[i];
            showStatus(run, status);
            if (page.onStatus) { page.onStatus(run, status); }
            run.live = !!status.live;
            if (status.last_step !== run.lastStep || !run.live) {
              run.lastStep = status.last_step;
              moved.push(run);
            }
            (status.metric_keys || []).forEach(function (key) {
              if (run.keys.indexOf(key) < 0) {
                run.keys.push(key);
                if (page.onNewKey) { page.onNewKey(run, key); }
              }
            });
          });
          return refresh(moved);
        })
        .then(function () { errors = 0; }, function () { errors++; })
        .then(function () {
          busy = false;
          if (errors >= MAX_POLL_ERRORS) {
            stop("Live updates stopped after " + errors + " failed requests; reload to retry.");
          } else if (!live.some(function (run) { return run.live; })) {
            stop(page.runs.length > 1 ? "No run here is live any more; the charts are complete."
                 : "The run is no longer live; its charts are complete.");
          } else {
            schedule();
          }
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (stopped) { return; }
      if (document.hidden) { clearTimeout(timer); } else { tick(); }
    });
    schedule();
  }

  function bindControls(page) {
    var root = document.querySelector(".runstore-controls");
    if (!root) { return; }
    var smooth = root.querySelector(".runstore-smooth");
    var smoothOut = root.querySelector(".runstore-smooth-value");
    var log = root.querySelector(".runstore-log");
    var x = root.querySelector(".runstore-x");
    var settings = page.settings, frame = null;

    function redrawSoon() {
      if (frame) { return; }
      frame = window.requestAnimationFrame(function () {
        frame = null;
        page.charts.forEach(function (chart) { chart.redraw(); });
      });
    }

    function changed() {
      saveSettings(settings);
      redrawSoon();
    }

    smooth.value = String(settings.smooth);
    smoothOut.textContent = settings.smooth.toFixed(2);
    log.checked = settings.log;
    x.value = settings.x;
    smooth.addEventListener("input", function () {
      var value = Number(smooth.value);
      settings.smooth = isFinite(value) ? Math.max(0, Math.min(0.99, value)) : 0;
      smoothOut.textContent = settings.smooth.toFixed(2);
      changed();
    });
    log.addEventListener("change", function () {
      settings.log = log.checked;
      changed();
    });
    x.addEventListener("change", function () {
      if (Object.prototype.hasOwnProperty.call(X_FIELDS, x.value)) { settings.x = x.value; }
      changed();
    });
  }

  /* options: runs [{runKey, name, metricUrl, statusUrl, live, keys, lastStep, archived
   * (optional: the run has a rewind whose archived tail each chart draws faintly)}],
   * maxPoints (the most points a chart asks for; from the page data), height,
   * colorFor(run, chartIndex), labelFor(run, key), onNewKey(run, key)
   * (optional: add a figure for a key that appeared while live; call page.observe),
   * onStatus(run, status) (optional: a live run's status.json came; the page's own
   * parts follow it), markersFor(run) (optional: [{step, label, color}] lineage markers drawn on every
   * chart of the run), syncKey (optional: the uPlot.sync key whose charts share one
   * crosshair; default "runstore", every chart of the page). */
  function start(options) {
    if (typeof uPlot === "undefined") { return null; }
    var page = {
      runs: options.runs,
      maxPoints: options.maxPoints,
      height: options.height || 220,
      colorFor: options.colorFor,
      labelFor: options.labelFor,
      onNewKey: options.onNewKey,
      markersFor: options.markersFor,
      onStatus: options.onStatus,
      syncKey: options.syncKey || SYNC_KEY,
      settings: readSettings(),
      charts: []
    };
    var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          entry.target.runstoreChart.load();
        }
      });
    }, { rootMargin: "200px" }) : null;

    page.observe = function (figure) {
      var chart = makeChart(page, figure, page.charts.length);
      figure.runstoreChart = chart;
      page.charts.push(chart);
      if (observer) { observer.observe(figure); } else { chart.load(); }
      return chart;
    };

    Array.prototype.forEach.call(document.querySelectorAll(".runstore-chart"), page.observe);
    bindControls(page);
    startPolling(page);

    var resizeTimer = null;
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () {
        page.charts.forEach(function (chart) { chart.resize(); });
      }, 100);
    });
    window.runstoreChartsPage = page;  // for the browser test and the curious
    return page;
  }

  window.RunstoreCharts = {
    start: start, fetchJSON: fetchJSON, tickLabels: tickLabels, logTickLabels: logTickLabels,
    valueText: valueText, axisSize: axisSize, SYNC_KEY: SYNC_KEY
  };
})();
