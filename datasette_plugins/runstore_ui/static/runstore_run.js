/* runstore run page: one uPlot line chart per metric (runstore_charts.js draws them).
 *
 * Page data comes as JSON in <script id="runstore-page-data">. Each chart is a
 * <figure class="runstore-chart" data-key="..."> in the section of its prefix group;
 * a key that first appears while the run is live gets a new figure in its group.
 * Lineage markers (page.markers: a fork or rewind step) are drawn on every chart; a live
 * run's summary table follows its status.json. Its times (<time data-runstore-time>)
 * are runstore_time.js's, the UI's one time format.
 */
(function () {
  "use strict";

  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  var dataEl = document.getElementById("runstore-page-data");
  if (!dataEl || !window.RunstoreCharts) { return; }
  var page = JSON.parse(dataEl.textContent);
  var charts = null;

  /* A failed run's stderr tail at the top ends with the error itself: show its end. */
  Array.prototype.forEach.call(document.querySelectorAll(".runstore-error-lines"),
    function (pre) { pre.scrollTop = pre.scrollHeight; });

  /* The summary table of a live run, from its status.json (text only). */
  function showSummary(run, status) {
    var holder = document.querySelector(".runstore-summary-table");
    if (!holder || !status.summary || !status.summary.length) { return; }
    var table = document.createElement("table");
    table.className = "runstore-kv-table";
    status.summary.forEach(function (pair) {
      var tr = document.createElement("tr"), th = document.createElement("th");
      var td = document.createElement("td");
      th.textContent = pair[0];
      td.textContent = pair[1];
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    });
    holder.textContent = "";
    holder.appendChild(table);
  }

  function groupName(key) {
    var slash = key.indexOf("/");
    return slash > 0 ? key.slice(0, slash) : "charts";
  }

  /* A figure for a metric key that appeared while the run was live. */
  function addFigure(run, key) {
    var container = document.querySelector(".runstore-chart-groups");
    if (!container || !charts) { return; }
    var name = groupName(key), section = null;
    Array.prototype.forEach.call(container.querySelectorAll(".runstore-group"), function (s) {
      if (s.getAttribute("data-group") === name) { section = s; }
    });
    if (!section) {
      section = document.createElement("section");
      section.className = "runstore-group";
      section.setAttribute("data-group", name);
      var h3 = document.createElement("h3");
      h3.textContent = name + " ";
      var count = document.createElement("span");
      count.className = "runstore-count";
      h3.appendChild(count);
      var grid = document.createElement("div");
      grid.className = "runstore-charts";
      section.appendChild(h3);
      section.appendChild(grid);
      container.appendChild(section);
      var empty = container.querySelector(".runstore-no-metrics");
      if (empty) { empty.remove(); }
    }
    var figure = document.createElement("figure");
    figure.className = "runstore-chart";
    figure.setAttribute("data-key", key);
    var caption = document.createElement("figcaption");
    caption.textContent = key;
    var plot = document.createElement("div");
    plot.className = "runstore-plot";
    figure.appendChild(caption);
    figure.appendChild(plot);
    section.querySelector(".runstore-charts").appendChild(figure);
    section.querySelector(".runstore-count").textContent =
      "(" + section.querySelectorAll(".runstore-chart").length + ")";
    charts.observe(figure);
  }

  charts = window.RunstoreCharts.start({
    runs: [{
      runKey: page.runKey, name: "", metricUrl: page.metricUrl, statusUrl: page.statusUrl,
      live: page.live, keys: page.keys.slice(), lastStep: page.lastStep,
      archived: !!page.archived
    }],
    maxPoints: page.maxPoints,
    height: 220,
    colorFor: function (run, index) { return COLORS[index % COLORS.length]; },
    labelFor: function (run, key) { return key; },
    onNewKey: addFigure,
    onStatus: showSummary,
    markersFor: function () { return page.markers || []; }
  });
})();
