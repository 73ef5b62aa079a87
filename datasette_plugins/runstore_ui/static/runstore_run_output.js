/* runstore run page: media, system metrics and console output
 * (templates/runstore_run_output.html; data in <script id="runstore-extras-data">).
 *
 * - Media: histograms are drawn as uPlot bar charts; a key logged at several steps
 *   has a step slider that fetches the item of the chosen step from media.json and
 *   shows it in place (image, video, histogram, table or JSON text).
 * - System: one uPlot line chart per system/... key, wall-clock time on x, from
 *   system.json (downsampled with M4 on the server when long).
 * - Console: the first lines come with the page; "Load more" fetches the next ones
 *   from console.json. While the run is live, new console lines and system samples
 *   are fetched every few seconds (not while the page is hidden) until it is not.
 *
 * Plain JS, no build step. Run-supplied text only ever reaches the page as text
 * (textContent, attribute values, uPlot's labels); URLs come from the server.
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("runstore-extras-data");
  // runstore_charts.js, which the run page loads before this deferred script runs.
  if (!dataEl || !window.RunstoreCharts) { return; }
  var data = JSON.parse(dataEl.textContent);
  var fetchJSON = window.RunstoreCharts.fetchJSON;
  var hasPlot = typeof uPlot !== "undefined";
  var POLL_MS = 4000;
  var MAX_CONSOLE_LINES = 20000;  // lines kept on the page before "Load more" takes over
  var SYS_HEIGHT = 170;
  var HIST_HEIGHT = 190;
  var SYS_COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                    "#e377c2", "#7f7f7f", "#bcbd22", "#d62728"];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text != null) { node.textContent = String(text); }
    return node;
  }

  function message(parent, text) {
    parent.textContent = "";
    parent.appendChild(el("p", "runstore-empty", text));
  }

  function widthOf(node, fallback) {
    return Math.max(160, node.clientWidth || fallback || 320);
  }

  /* ---- media ---------------------------------------------------------------- */

  function drawHistogram(body, item) {
    var plot = body.querySelector(".runstore-hist-plot");
    if (!plot) { return; }
    if (plot.runstoreChart) { plot.runstoreChart.destroy(); plot.runstoreChart = null; }
    var edges = item.edges || [], counts = item.counts || [];
    if (!hasPlot || !counts.length) {
      if (!counts.length) { message(plot, "Empty histogram."); }
      return;
    }
    var xs = [], lo = edges[0], hi = edges[edges.length - 1];
    for (var i = 0; i < counts.length; i++) { xs.push((edges[i] + edges[i + 1]) / 2); }
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    plot.textContent = "";
    var opts = {
      width: widthOf(plot), height: HIST_HEIGHT,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: function () { return [lo, hi]; } },
                y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.05 : 1]; } } },
      axes: [{}, {}],
      series: [
        { label: "bin centre" },
        { label: "count", stroke: "#4c78a8", fill: "rgba(76,120,168,0.55)", width: 1,
          paths: uPlot.paths.bars({ size: [1, Infinity], gap: 1, align: 0 }),
          points: { show: false } }
      ]
    };
    plot.runstoreChart = new uPlot(opts, [xs, counts], plot);
  }

  function renderItem(figure, key, item) {
    var body = figure.querySelector(".runstore-media-body");
    var old = body.querySelector(".runstore-hist-plot");
    if (old && old.runstoreChart) { old.runstoreChart.destroy(); }
    body.textContent = "";
    var note = null;
    if (item.type === "image-file" || item.type === "video-file") {
      if (!item.url) {
        body.appendChild(el("p", "runstore-empty", "No stored file."));
      } else if (item.type === "image-file") {
        var link = el("a", "runstore-thumb-link");
        link.href = item.url; link.target = "_blank"; link.rel = "noopener";
        var img = el("img", "runstore-thumb" +
          (item.width && item.width < 128 ? " runstore-pixelated" : ""));
        img.src = item.url;
        img.alt = item.caption || key;
        link.appendChild(img);
        body.appendChild(link);
      } else {
        var video = el("video", "runstore-video");
        video.controls = true; video.preload = "metadata"; video.src = item.url;
        body.appendChild(video);
      }
      var bits = [];
      if (item.type === "image-file" && item.width) { bits.push(item.width + "×" + item.height); }
      if (item.type === "video-file" && item.episode != null) { bits.push("episode " + item.episode); }
      if (item.format) { bits.push(item.format); }
      note = el("p", "runstore-media-note", bits.join(" · "));
    } else if (item.type === "histogram") {
      body.appendChild(el("div", "runstore-hist-plot"));
      var edges = item.edges || [];
      note = el("p", "runstore-media-note runstore-hist-note", edges.length
        ? item.counts.length + " bins · " + item.total + " values · " + item.range_text
        : "Empty histogram.");
    } else if (item.type === "table") {
      var wrap = el("div", "runstore-table-wrap");
      var table = el("table", "runstore-media-table");
      var head = table.appendChild(el("thead")).appendChild(el("tr"));
      (item.columns || []).forEach(function (c) { head.appendChild(el("th", null, c)); });
      var tbody = table.appendChild(el("tbody"));
      (item.rows || []).forEach(function (row) {
        var tr = tbody.appendChild(el("tr"));
        row.forEach(function (cell) { tr.appendChild(el("td", null, cell)); });
      });
      wrap.appendChild(table);
      body.appendChild(wrap);
      var shown = (item.rows || []).length;
      note = el("p", "runstore-media-note", item.total_rows > shown
        ? "First " + shown + " of " + item.total_rows + " rows"
        : item.total_rows + (item.total_rows === 1 ? " row" : " rows"));
    } else {
      body.appendChild(el("pre", "runstore-media-json", item.text || ""));
    }
    if (note) { body.appendChild(note); }
    if (item.caption) { body.appendChild(el("p", "runstore-media-caption", item.caption)); }
    if (item.type === "histogram") { drawHistogram(body, item); }
    var stepEl = figure.querySelector(".runstore-media-step");
    if (stepEl) { stepEl.textContent = "step " + item.step; }
  }

  function bindSlider(figure, media) {
    var input = figure.querySelector(".runstore-media-slider input");
    var output = figure.querySelector(".runstore-media-slider output");
    if (!input || !media.steps || media.steps.length < 2) { return; }
    var cache = {}, timer = null, wanted = null;
    cache[media.item.step] = media.item;

    function show(step) {
      wanted = step;
      if (cache[step]) {
        figure.classList.remove("runstore-loading-item");
        renderItem(figure, media.key, cache[step]);
        return;
      }
      figure.classList.add("runstore-loading-item");
      var params = new URLSearchParams({ key: media.key, step: String(step) });
      fetchJSON(data.mediaUrl + "?" + params.toString()).then(function (answer) {
        cache[step] = answer.item;
        if (wanted === step) {
          figure.classList.remove("runstore-loading-item");
          renderItem(figure, media.key, answer.item);
        }
      }).catch(function (error) {
        figure.classList.remove("runstore-loading-item");
        if (wanted === step) { output.textContent = step + " (" + error.message + ")"; }
      });
    }

    input.addEventListener("input", function () {
      var step = media.steps[Number(input.value)];
      output.textContent = String(step);
      clearTimeout(timer);
      timer = setTimeout(function () { show(step); }, 120);
    });
  }

  var mediaByKey = {};
  (data.media || []).forEach(function (m) { mediaByKey[m.key] = m; });
  Array.prototype.forEach.call(document.querySelectorAll(".runstore-media"), function (figure) {
    var media = mediaByKey[figure.getAttribute("data-key")];
    if (!media) { return; }
    if (media.item.type === "histogram") {
      drawHistogram(figure.querySelector(".runstore-media-body"), media.item);
    }
    bindSlider(figure, media);
  });

  /* ---- system metrics --------------------------------------------------------- */

  var sysCharts = {};  // key -> {figure, plot, u, at, values}
  var lastAt = null;

  function sysFigure(key) {
    var container = document.querySelector(".runstore-syscharts");
    if (!container) { return null; }
    var found = null;
    Array.prototype.forEach.call(container.querySelectorAll(".runstore-syschart"), function (f) {
      if (f.getAttribute("data-key") === key) { found = f; }
    });
    if (found) { return found; }
    var empty = container.querySelector(".runstore-system-empty");
    if (empty) { empty.hidden = true; }
    var figure = el("figure", "runstore-syschart");
    figure.setAttribute("data-key", key);
    figure.appendChild(el("figcaption", null, key));
    figure.appendChild(el("div", "runstore-sysplot"));
    container.appendChild(figure);
    return figure;
  }

  function drawSystem(key, series, index) {
    var chart = sysCharts[key];
    if (!chart) {
      var figure = sysFigure(key);
      if (!figure) { return; }
      chart = sysCharts[key] = { figure: figure, plot: figure.querySelector(".runstore-sysplot"),
                                 u: null, at: [], values: [], index: index };
    }
    chart.at = chart.at.concat(series.at);
    chart.values = chart.values.concat(series.values);
    if (!chart.at.length) { message(chart.plot, "No samples."); return; }
    if (chart.u) { chart.u.setData([chart.at, chart.values]); return; }
    chart.plot.textContent = "";
    chart.u = new uPlot({
      width: widthOf(chart.plot), height: SYS_HEIGHT,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [window.RunstoreTime ? { label: "time", values: window.RunstoreTime.axisValues }
        : { label: "time" }, {}],
      series: [
        { label: "time", value: function (u, v) {  // the UI's one time format
          return v == null || !window.RunstoreTime ? "" : window.RunstoreTime.local(v); } },
        { label: key.replace(/^system\//, ""), stroke: SYS_COLORS[chart.index % SYS_COLORS.length],
          width: 1.5, points: { show: chart.at.length < 40, size: 4 } }
      ]
    }, [chart.at, chart.values], chart.plot);
  }

  function loadSystem() {
    if (!document.querySelector(".runstore-syscharts") || !hasPlot) {
      return Promise.resolve(null);
    }
    var params = new URLSearchParams({ points: "2000" });
    if (lastAt != null) { params.set("after", String(lastAt)); }
    return fetchJSON(data.systemUrl + "?" + params.toString()).then(function (answer) {
      var keys = Object.keys(answer.series || {});
      keys.forEach(function (key) {
        var index = (data.systemKeys || []).indexOf(key);
        drawSystem(key, answer.series[key], index < 0 ? keys.indexOf(key) : index);
      });
      if (answer.last_at != null) { lastAt = answer.last_at; }
      return answer;
    });
  }

  loadSystem().catch(function (error) {
    Array.prototype.forEach.call(document.querySelectorAll(".runstore-sysplot"), function (p) {
      message(p, "Could not load system metrics: " + error.message);
    });
  });

  /* ---- console ------------------------------------------------------------------ */

  var consoleEl = document.querySelector(".runstore-console");
  var moreButton = document.querySelector(".runstore-console-more");
  var lastSeq = data.lastSeq, remaining = data.remaining, shownLines = 0, loading = false;
  if (consoleEl) { shownLines = consoleEl.querySelectorAll(".runstore-line").length; }

  function lineNode(line) {
    var row = el("div", "runstore-line " + (line.stream === "stderr" ? "runstore-stderr"
                                                                     : "runstore-stdout"));
    row.setAttribute("data-seq", String(line.seq));
    var time = el("time", null, line.time);
    time.setAttribute("datetime", line.iso);
    time.setAttribute("data-runstore-time", "clock");
    if (window.RunstoreTime) { window.RunstoreTime.apply(time); }  // local, as the rest
    row.appendChild(time);
    row.appendChild(el("span", "runstore-stream", line.stream === "stderr" ? "err" : ""));
    row.appendChild(el("span", "runstore-text", line.text));
    return row;
  }

  function showMore() {
    if (!moreButton) { return; }
    moreButton.hidden = !remaining;
    moreButton.disabled = false;
    moreButton.textContent = "Load more (" + remaining + " more line" +
      (remaining === 1 ? "" : "s") + ")";
  }

  function loadConsole(auto) {
    if (!consoleEl || loading) { return Promise.resolve(null); }
    if (auto && shownLines >= MAX_CONSOLE_LINES) {  // keep the page light: ask first
      return fetchJSON(data.consoleUrl + "?" + new URLSearchParams(
        { after: String(lastSeq), limit: "1" }).toString()).then(function (answer) {
        remaining = answer.remaining + answer.lines.length;
        showMore();
        return answer;
      });
    }
    loading = true;
    if (moreButton && !auto) { moreButton.disabled = true; }
    var params = new URLSearchParams({ after: String(lastSeq) });
    return fetchJSON(data.consoleUrl + "?" + params.toString()).then(function (answer) {
      var atBottom = consoleEl.scrollHeight - consoleEl.scrollTop - consoleEl.clientHeight < 8;
      var fragment = document.createDocumentFragment();
      answer.lines.forEach(function (line) { fragment.appendChild(lineNode(line)); });
      consoleEl.appendChild(fragment);
      shownLines += answer.lines.length;
      if (answer.lines.length) {
        consoleEl.hidden = false;
        var empty = document.querySelector(".runstore-console-empty");
        if (empty) { empty.hidden = true; }
        if (auto && atBottom) { consoleEl.scrollTop = consoleEl.scrollHeight; }
      }
      lastSeq = answer.last_seq;
      remaining = answer.remaining;
      loading = false;
      var total = document.querySelector(".runstore-console-total");  // the counter
      if (total && answer.total) {
        total.textContent = answer.total + (answer.total === 1 ? " line" : " lines") +
          " of stdout and stderr";
      }
      showMore();
      return answer;
    }, function (error) {
      loading = false;
      if (moreButton) { moreButton.disabled = false; moreButton.textContent = "Load more (" +
        error.message + "; try again)"; }
      throw error;
    });
  }

  if (moreButton) {
    moreButton.addEventListener("click", function () { loadConsole(false).catch(function () {}); });
  }

  /* ---- live ------------------------------------------------------------------------ */

  if (data.live) {
    var timer = null, errors = 0, stopped = false;

    var schedule = function () {
      clearTimeout(timer);
      if (!stopped && !document.hidden) { timer = setTimeout(tick, POLL_MS); }
    };

    var tick = function () {
      if (stopped || document.hidden) { return; }
      Promise.all([loadConsole(true), loadSystem()]).then(function (answers) {
        errors = 0;
        var live = answers.some(function (a) { return a && a.live; });
        if (!live && answers.some(function (a) { return a; })) { stopped = true; }
      }, function () { errors++; if (errors >= 5) { stopped = true; } }).then(schedule);
    };

    document.addEventListener("visibilitychange", function () {
      if (!stopped && !document.hidden) { tick(); }
    });
    schedule();
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      Object.keys(sysCharts).forEach(function (key) {
        var c = sysCharts[key];
        if (c.u) { c.u.setSize({ width: widthOf(c.plot), height: SYS_HEIGHT }); }
      });
      Array.prototype.forEach.call(document.querySelectorAll(".runstore-hist-plot"), function (p) {
        if (p.runstoreChart) { p.runstoreChart.setSize({ width: widthOf(p), height: HIST_HEIGHT }); }
      });
    }, 100);
  });
})();
