/* runstore parallel coordinates and scatter plots: hand-written SVG, no dependency.
 *
 * RunstoreParallel.parallel(el, {axes, rows, metric, goal}) draws parallel coordinates
 * into `el`: one vertical axis per entry of `axes` ({name, type: "category" | "log" |
 * "linear", categories (for "category"), metric: true on the metric's axis}), one
 * polyline per row ({name, values (one per axis; null where a row has none), metric
 * (a number or null), extra (a title suffix), status (its data-status)}), coloured from
 * worst (light) to best
 * (dark) by the metric (viridis); rows without a metric grey and dashed, underneath.
 * Labels never overlap: axis names too wide for the gap between axes go on two
 * staggered rows, and a name or tick label still too wide is cut with "…", the whole
 * text in its tooltip (<title>); a category axis with more values than fit labels
 * every n-th.
 *
 * RunstoreParallel.scatter(el, {x, y, points}) draws one axis against another:
 * points [{x, y, name, color}], `x` and `y` the axis names; a text x axis is drawn as
 * categories. Its scales are padded, so the points at the ends of a range are whole and
 * off the axes.
 *
 * The sweep page (runstore_sweep.js) and the workspace charts (runstore_workspace.js)
 * both draw with it. Run-supplied text reaches the page only through textContent.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var PAD = 0.06;  // a scatter plot's padding: of its frame, each side
  // viridis, from worst (light) to best (dark)
  var STOPS = [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]];

  function isNumber(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v) {
    if (!isNumber(v)) { return v == null ? "" : String(v); }
    var a = Math.abs(v);
    return (a !== 0 && (a < 1e-3 || a >= 1e5)) ? v.toExponential(2) : String(+v.toPrecision(4));
  }

  function message(el, text) {
    var p = document.createElement("p");
    p.className = "runstore-empty";
    p.textContent = text;
    el.replaceChildren(p);
  }

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

  /* The axis type of a list of values: "category" unless all are numbers; "log" for
   * positive numbers spanning more than two decades. */
  function axisType(values) {
    var present = values.filter(function (v) { return v !== null && v !== undefined; });
    if (!present.length || !present.every(isNumber)) { return "category"; }
    var lo = Math.min.apply(null, present), hi = Math.max.apply(null, present);
    return lo > 0 && hi / lo > 100 ? "log" : "linear";
  }

  /* A scale for one axis: pos(value) in [0, 1] (1 at the top) or null, and its ticks. */
  function scaleFor(axis, values) {
    if (axis.type === "category") {
      var cats = (axis.categories || []).slice();
      values.forEach(function (v) {
        if (v !== null && v !== undefined && cats.indexOf(v) < 0) { cats.push(v); }
      });
      var n = cats.length;
      var posOf = function (v) {
        var i = cats.indexOf(v);
        return i < 0 ? null : (n === 1 ? 0.5 : 1 - i / (n - 1));
      };
      return { pos: posOf, ticks: cats.map(function (c) { return { at: posOf(c), text: fmt(c) }; }) };
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

  var NAME_FONT = 12, TICK_FONT = 11, LABEL_GAP = 8, MIN_LABEL = 48;

  /* A text's width in px: measured once it is in the page, else estimated. */
  function estimate(text, size) { return text.length * size * 0.62; }

  function widthOf(textEl, size) {
    var w = 0;
    try { w = textEl.getComputedTextLength(); } catch (e) { w = 0; }
    return w || estimate(textEl.textContent, size);
  }

  /* Sets an SVG <text> to `text` + `suffix`, cut with "…" to fit `room` px; when cut,
   * the whole text is its tooltip (a <title>). Text only (textContent). */
  function fitText(textEl, text, suffix, room) {
    var size = Number(textEl.getAttribute("font-size")) || NAME_FONT;
    textEl.textContent = text + suffix;
    if (widthOf(textEl, size) <= room) { return; }
    var lo = 0, hi = text.length;  // the longest prefix that fits, by bisection
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      textEl.textContent = text.slice(0, mid) + "…" + suffix;
      if (widthOf(textEl, size) <= room) { lo = mid; } else { hi = mid - 1; }
    }
    textEl.textContent = text.slice(0, lo) + "…" + suffix;
    node("title", {}, textEl).textContent = text + suffix;
  }

  function parallel(el, spec) {
    var axes = spec.axes, rows = spec.rows;
    if (!rows.length) { message(el, "No runs to draw."); return null; }
    var W = Math.max(480, el.clientWidth || 800), H = 340;
    var columns = axes.map(function (axis, a) {
      return scaleFor(axis, rows.map(function (r) { return r.values[a]; }));
    });
    // The first axis' tick labels sit in the left margin: as wide as they need, up to
    // 15% of the plot.
    var firstTicks = columns.length ? columns[0].ticks.map(function (tick) {
      return estimate(tick.text, TICK_FONT);
    }) : [];
    var left = Math.round(Math.max(60, Math.min(0.15 * W, 14 + Math.max.apply(null,
      firstTicks.concat([0])))));
    var right = 70, bottom = 30;
    var step = axes.length > 1 ? (W - left - right) / (axes.length - 1) : 0;
    // Axis names wider than the gap between axes go on two staggered rows.
    var stagger = axes.length > 2 && axes.some(function (axis) {
      return estimate(axis.name + " (log)", NAME_FONT) > step - LABEL_GAP;
    });
    var top = stagger ? 54 : 36;
    var metrics = rows.map(function (r) { return r.metric; }).filter(isNumber);
    var mlo = Math.min.apply(null, metrics), mhi = Math.max.apply(null, metrics);
    var svg = node("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "class": "runstore-parallel-svg" });
    node("title", {}, svg).textContent = spec.title || ("Parallel coordinates of " +
      axes.map(function (a) { return a.name; }).join(", "));
    var x = function (a) { return left + a * step; };
    var y = function (p) { return top + (1 - p) * (H - top - bottom); };
    var lines = node("g", { "class": "runstore-parallel-lines" }, svg);
    var order = rows.slice().sort(function (s, t) {
      var sm = isNumber(s.metric), tm = isNumber(t.metric);
      if (sm !== tm) { return sm ? 1 : -1; }
      if (!sm) { return 0; }
      return spec.goal === "minimize" ? t.metric - s.metric : s.metric - t.metric;
    });
    order.forEach(function (row) {
      var pts = [], segments = [];
      axes.forEach(function (axis, a) {
        var p = columns[a].pos(row.values[a]);
        if (p === null) { if (pts.length) { segments.push(pts); } pts = []; return; }
        pts.push(x(a).toFixed(1) + "," + y(p).toFixed(1));
      });
      if (pts.length) { segments.push(pts); }
      var scored = isNumber(row.metric);
      var t = scored && mhi > mlo ? (row.metric - mlo) / (mhi - mlo) : 1;
      if (spec.goal !== "minimize") { t = 1 - t; }
      var g = node("g", { "class": "runstore-parallel-trial" + (scored ? "" : " runstore-unscored") },
        lines);
      if (row.status) { g.setAttribute("data-status", row.status); }
      node("title", {}, g).textContent = row.name + (row.extra || "") + ": " +
        (spec.metric || "metric") + " " + (scored ? fmt(row.metric) : "none");
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
    el.replaceChildren(svg);  // in the page first: the labels are fitted by measuring
    axes.forEach(function (axis, a) {
      var g = node("g", { "class": "runstore-parallel-axis", "data-axis": axis.name }, svg);
      node("line", { x1: x(a), x2: x(a), y1: y(0), y2: y(1), stroke: "#333" }, g);
      // The name: centred on its axis, as wide as the gap to the next name on its row
      // (two gaps when staggered) and the SVG's edge allow; cut with "…" past that, the
      // whole name in its tooltip.
      var room = Math.min((stagger ? 2 : 1) * (step || W) - LABEL_GAP,
                          2 * Math.min(x(a), W - x(a)) - 4);
      var name = node("text", { x: x(a), y: stagger && a % 2 ? top - 35 : top - 17,
        "text-anchor": "middle", "font-weight": "bold", "font-size": NAME_FONT,
        "class": "runstore-parallel-name" }, g);
      fitText(name, axis.name, columns[a].log ? " (log)" : "", room);
      // Tick labels sit left of their axis: at most the gap to the axis before it.
      var tickRoom = a ? step - LABEL_GAP - 6 : left - 8;
      var ticks = columns[a].ticks.filter(function (tick) { return tick.at !== null; });
      var every = Math.max(1, Math.ceil(TICK_FONT * 1.25 / Math.max(1, (H - top - bottom) /
        Math.max(1, ticks.length - 1))));  // many categories: label every n-th
      ticks.forEach(function (tick, t) {
        node("line", { x1: x(a) - 4, x2: x(a), y1: y(tick.at), y2: y(tick.at), stroke: "#333" }, g);
        if (t % every && t !== ticks.length - 1) { return; }
        var text = node("text", { x: x(a) - 6, y: y(tick.at) + 4, "text-anchor": "end",
          "font-size": TICK_FONT, fill: "#333", "paint-order": "stroke", stroke: "#fff",
          "stroke-width": 3, "class": "runstore-parallel-tick" }, g);
        fitText(text, tick.text, "", tickRoom);
      });
    });
    return svg;
  }

  function scatter(el, spec) {
    var points = spec.points.filter(function (p) {
      return p.x !== null && p.x !== undefined && isNumber(p.y);
    });
    if (!points.length) { message(el, "No run has both " + spec.x + " and " + spec.y + "."); return null; }
    var W = Math.max(320, el.clientWidth || 480), H = 300;
    var top = 16, bottom = 44, left = 70, right = 20;
    var xAxis = { type: axisType(points.map(function (p) { return p.x; })) };
    var xs = scaleFor(xAxis, points.map(function (p) { return p.x; }));
    var ys = scaleFor({ type: "linear" }, points.map(function (p) { return p.y; }));
    var svg = node("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "class": "runstore-scatter-svg" });
    node("title", {}, svg).textContent = spec.y + " against " + spec.x;
    // The scales are padded (categories 10%, numbers PAD of the frame each side): the
    // points at the ends of a range are drawn whole, inside the axes, not on them.
    var bottomY = H - bottom;
    var px = function (p) {
      return left + (xAxis.type === "category" ? 0.1 + 0.8 * p : PAD + (1 - 2 * PAD) * p) *
        (W - left - right);
    };
    var py = function (p) { return bottomY - (PAD + (1 - 2 * PAD) * p) * (bottomY - top); };
    node("line", { x1: left, x2: W - right, y1: bottomY, y2: bottomY, stroke: "#333",
      "class": "runstore-scatter-axis" }, svg);
    node("line", { x1: left, x2: left, y1: bottomY, y2: top, stroke: "#333",
      "class": "runstore-scatter-axis" }, svg);
    el.replaceChildren(svg);  // in the page first: the labels are fitted by measuring
    // x tick labels: each as wide as the gap to the next labelled one allows (every n-th
    // labelled when they are closer than MIN_LABEL px), cut with "…" past that.
    var xTicks = xs.ticks.filter(function (tick) { return tick.at !== null; });
    var gap = xTicks.length > 1 ? Math.abs(px(xTicks[1].at) - px(xTicks[0].at)) : W;
    var every = Math.max(1, Math.ceil(MIN_LABEL / Math.max(1, gap)));
    xTicks.forEach(function (tick, i) {
      if (i % every) { return; }
      var x = px(tick.at);
      var t = node("text", { x: x, y: bottomY + 16, "text-anchor": "middle",
        "font-size": TICK_FONT, fill: "#333", "class": "runstore-scatter-tick" }, svg);
      fitText(t, tick.text, "", Math.min(gap * every - LABEL_GAP, 2 * Math.min(x, W - x) - 4));
    });
    ys.ticks.forEach(function (tick) {
      var t = node("text", { x: left - 6, y: py(tick.at) + 4, "text-anchor": "end",
        "font-size": TICK_FONT, fill: "#333", "class": "runstore-scatter-tick" }, svg);
      fitText(t, tick.text, "", left - 24);  // right of the y axis' name
    });
    var xl = node("text", { x: (left + W - right) / 2, y: H - 8, "text-anchor": "middle",
      "font-size": 12, "font-weight": "bold" }, svg);
    xl.textContent = spec.x + (xs.log ? " (log)" : "");
    var yl = node("text", { x: 12, y: (top + bottomY) / 2, "text-anchor": "middle",
      "font-size": 12, "font-weight": "bold",
      transform: "rotate(-90 12 " + (top + bottomY) / 2 + ")" }, svg);
    yl.textContent = spec.y;
    var dots = node("g", { "class": "runstore-scatter-points" }, svg);
    points.forEach(function (p, i) {
      var at = xs.pos(p.x);
      if (at === null) { return; }
      // categories: a little jitter so runs with the same value stay apart
      var jitter = xAxis.type === "category" ? ((i * 7919) % 11 - 5) * 1.5 : 0;
      var c = node("circle", { cx: (px(at) + jitter).toFixed(1), cy: py(ys.pos(p.y)).toFixed(1),
        r: 4.5, fill: p.color || "#1f77b4", "fill-opacity": 0.85, stroke: "#fff" }, dots);
      node("title", {}, c).textContent = p.name + ": " + spec.x + " " + fmt(p.x) + ", " +
        spec.y + " " + fmt(p.y);
    });
    return svg;
  }

  window.RunstoreParallel = {
    parallel: parallel, scatter: scatter, scaleFor: scaleFor, axisType: axisType, fmt: fmt
  };
})();
