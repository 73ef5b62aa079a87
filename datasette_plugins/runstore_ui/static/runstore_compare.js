/* runstore compare page: one uPlot chart per metric, one series per run
 * (runstore_charts.js draws them, with the same settings bar as the run page).
 *
 * Page data comes as JSON in <script id="runstore-compare-data">: the runs (name,
 * colour, chart-data and status URLs, live or not, metric keys). Each chart is a
 * <figure class="runstore-chart" data-key="..."> and overlays every run that has the
 * key; live runs get their new points appended. Run names reach the page only as
 * text (uPlot sets legend labels with textContent).
 */
(function () {
  "use strict";

  var dataEl = document.getElementById("runstore-compare-data");
  if (!dataEl || !window.RunstoreCharts) { return; }
  var page = JSON.parse(dataEl.textContent);

  window.RunstoreCharts.start({
    runs: page.runs.map(function (run) {
      return {
        runKey: run.runKey, name: run.name, color: run.color, metricUrl: run.metricUrl,
        statusUrl: run.statusUrl, live: run.live, keys: run.keys.slice(), lastStep: null
      };
    }),
    maxPoints: page.maxPoints,
    height: 240,
    colorFor: function (run) { return run.color; },
    labelFor: function (run) { return run.name; }
  });
})();
