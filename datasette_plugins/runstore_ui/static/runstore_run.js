/* runstore run page: one uPlot line chart per metric.
 *
 * Page data comes as JSON in <script id="runstore-page-data">. Each chart is a
 * <figure class="runstore-chart" data-key="..."> and loads its points from the
 * chart-data route when it scrolls into view. The server downsamples long
 * metrics (M4); zooming (drag to select) fetches the exact points of the visible
 * step range, and a double click goes back to the whole run.
 */
(function () {
  "use strict";

  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var HEIGHT = 220;
  var MAX_POINTS = 4000;

  var dataEl = document.getElementById("runstore-page-data");
  if (!dataEl || typeof uPlot === "undefined") { return; }
  var page = JSON.parse(dataEl.textContent);
  var charts = [];

  function pointsFor(width) {
    return Math.max(200, Math.min(MAX_POINTS, Math.round(width) * 4));
  }

  function fetchPoints(key, width, range) {
    var params = new URLSearchParams({ key: key, points: String(pointsFor(width)) });
    if (range) {
      params.set("min_step", String(Math.floor(range[0])));
      params.set("max_step", String(Math.ceil(range[1])));
    }
    return fetch(page.metricUrl + "?" + params.toString(), {
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
  }

  function note(figure, data) {
    var el = figure.querySelector(".runstore-points");
    if (!el) {
      el = document.createElement("span");
      el.className = "runstore-points";
      figure.querySelector("figcaption").appendChild(el);
    }
    var shown = data.steps.length.toLocaleString();
    el.textContent = data.downsampled
      ? " · " + shown + " of " + data.total.toLocaleString() + " points (downsampled)"
      : " · " + shown + " points";
  }

  function message(plot, text) {
    plot.textContent = "";
    var p = document.createElement("p");
    p.className = "runstore-empty";
    p.textContent = text;
    plot.appendChild(p);
  }

  function draw(figure, index) {
    var key = figure.getAttribute("data-key");
    var plot = figure.querySelector(".runstore-plot");
    var width = Math.max(200, plot.clientWidth || 400);
    fetchPoints(key, width, null).then(function (overview) {
      if (!overview.steps.length) {
        message(plot, "No numeric values.");
        return;
      }
      plot.textContent = "";
      note(figure, overview);
      var state = { overview: overview, current: overview, zoomed: false, timer: null };
      var full = [overview.steps[0], overview.steps[overview.steps.length - 1]];

      function zoomTo(u, min, max) {
        var cur = state.current;
        var exactCovers = !cur.downsampled && cur.steps.length &&
          (!state.zoomed || (cur.range[0] <= min && max <= cur.range[1]));
        if (!overview.downsampled || exactCovers) { return; }
        fetchPoints(key, u.width, [min, max]).then(function (data) {
          if (u.scales.x.min !== min || u.scales.x.max !== max) { return; } // stale
          data.range = [min, max];
          state.current = data;
          state.zoomed = true;
          u.setData([data.steps, data.values], false);
          note(figure, data);
        });
      }

      var opts = {
        width: width,
        height: HEIGHT,
        legend: { show: true },
        scales: { x: { time: false } },
        axes: [{ label: "step" }, {}],
        series: [
          { label: "step" },
          {
            label: key,
            stroke: COLORS[index % COLORS.length],
            width: 1.5,
            points: { show: overview.steps.length < 60, size: 5 }
          }
        ],
        cursor: {
          drag: { x: true, y: false },
          bind: {
            dblclick: function (u, target, handler) {
              return function (event) {
                if (state.zoomed) {
                  state.zoomed = false;
                  state.current = overview;
                  u.setData([overview.steps, overview.values], true);
                  note(figure, overview);
                } else {
                  handler(event);
                }
                return null;
              };
            }
          }
        },
        hooks: {
          setScale: [function (u, scaleKey) {
            if (scaleKey !== "x") { return; }
            var min = u.scales.x.min, max = u.scales.x.max;
            if (min == null || max == null || (min <= full[0] && max >= full[1])) { return; }
            clearTimeout(state.timer);
            state.timer = setTimeout(function () { zoomTo(u, min, max); }, 150);
          }]
        }
      };
      var chart = new uPlot(opts, [overview.steps, overview.values], plot);
      charts.push({ chart: chart, plot: plot });
    }).catch(function (error) {
      message(plot, "Could not load " + key + ": " + error.message);
    });
  }

  var figures = Array.prototype.slice.call(document.querySelectorAll(".runstore-chart"));
  if ("IntersectionObserver" in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          draw(entry.target, figures.indexOf(entry.target));
        }
      });
    }, { rootMargin: "200px" });
    figures.forEach(function (figure) { observer.observe(figure); });
  } else {
    figures.forEach(draw);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      charts.forEach(function (c) {
        c.chart.setSize({ width: Math.max(200, c.plot.clientWidth), height: HEIGHT });
      });
    }, 100);
  });
})();
