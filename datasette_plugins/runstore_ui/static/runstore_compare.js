/* runstore compare page: one uPlot chart per metric, one series per run.
 *
 * Page data comes as JSON in <script id="runstore-compare-data">: the runs (name,
 * colour, chart-data URL, metric keys). Each chart is a <figure class="runstore-chart"
 * data-key="..."> and loads, when it scrolls into view, the points of every run that
 * has the key from that run's chart-data route (downsampled on the server, M4).
 * The runs' steps are merged with uPlot.join. Drag to zoom fetches the exact points
 * of the visible range; a double click goes back to the whole runs. Run names reach
 * the page only as text (uPlot sets legend labels with textContent).
 */
(function () {
  "use strict";

  var HEIGHT = 240;
  var MAX_POINTS = 4000;

  var dataEl = document.getElementById("runstore-compare-data");
  if (!dataEl || typeof uPlot === "undefined") { return; }
  var page = JSON.parse(dataEl.textContent);
  var charts = [];

  function pointsFor(width) {
    return Math.max(200, Math.min(MAX_POINTS, Math.round(width) * 4));
  }

  function fetchRun(run, key, width, range) {
    var params = new URLSearchParams({ key: key, points: String(pointsFor(width)) });
    if (range) {
      params.set("min_step", String(Math.floor(range[0])));
      params.set("max_step", String(Math.ceil(range[1])));
    }
    return fetch(run.metricUrl + "?" + params.toString(), {
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
  }

  function fetchAll(runs, key, width, range) {
    return Promise.all(runs.map(function (run) { return fetchRun(run, key, width, range); }));
  }

  function joined(results) {
    return uPlot.join(results.map(function (d) { return [d.steps, d.values]; }));
  }

  function note(figure, results) {
    var el = figure.querySelector(".runstore-points");
    if (!el) {
      el = document.createElement("span");
      el.className = "runstore-points";
      figure.querySelector("figcaption").appendChild(el);
    }
    var shown = 0, total = 0, sampled = false;
    results.forEach(function (d) {
      shown += d.steps.length; total += d.total; sampled = sampled || d.downsampled;
    });
    el.textContent = " · " + shown.toLocaleString() +
      (sampled ? " of " + total.toLocaleString() + " points (downsampled)" : " points");
  }

  function message(plot, text) {
    plot.textContent = "";
    var p = document.createElement("p");
    p.className = "runstore-empty";
    p.textContent = text;
    plot.appendChild(p);
  }

  function draw(figure) {
    var key = figure.getAttribute("data-key");
    var plot = figure.querySelector(".runstore-plot");
    var runs = page.runs.filter(function (run) { return run.keys.indexOf(key) >= 0; });
    var width = Math.max(200, plot.clientWidth || 400);
    fetchAll(runs, key, width, null).then(function (overview) {
      var count = overview.reduce(function (n, d) { return n + d.steps.length; }, 0);
      if (!count) {
        message(plot, "No numeric values.");
        return;
      }
      plot.textContent = "";
      note(figure, overview);
      var data = joined(overview);
      var full = [data[0][0], data[0][data[0].length - 1]];
      var sampled = overview.some(function (d) { return d.downsampled; });
      var state = { zoomed: false, timer: null, exact: null };

      function zoomTo(u, min, max) {
        if (!sampled) { return; }
        if (state.exact && state.exact[0] <= min && max <= state.exact[1]) { return; }
        fetchAll(runs, key, u.width, [min, max]).then(function (results) {
          if (u.scales.x.min !== min || u.scales.x.max !== max) { return; } // stale
          var exact = !results.some(function (d) { return d.downsampled; });
          state.exact = exact ? [min, max] : null;
          state.zoomed = true;
          u.setData(joined(results), false);
          note(figure, results);
        });
      }

      var series = [{ label: "step" }];
      runs.forEach(function (run) {
        series.push({
          label: run.name,
          stroke: run.color,
          width: 1.5,
          spanGaps: true,
          points: { show: count < 60 * runs.length, size: 5 }
        });
      });
      var opts = {
        width: width,
        height: HEIGHT,
        legend: { show: true },
        scales: { x: { time: false } },
        axes: [{ label: "step" }, {}],
        series: series,
        cursor: {
          drag: { x: true, y: false },
          bind: {
            dblclick: function (u, target, handler) {
              return function (event) {
                if (state.zoomed) {
                  state.zoomed = false;
                  state.exact = null;
                  u.setData(data, true);
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
      var chart = new uPlot(opts, data, plot);
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
          draw(entry.target);
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
