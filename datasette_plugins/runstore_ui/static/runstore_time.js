/* runstore time: the UI's one time format, shared by every page (run, compare, sweep,
 * workspace and run tables). Loaded before the pages' own scripts.
 *
 * - local(t): local time "2026-11-30 01:02:03" (the exact form, everywhere);
 * - ago(ms): "12 s ago", "3 min ago", "5 h ago", "2 d ago" (format.relative_time's units:
 *   the same words the server writes where no script runs);
 * - relative(t): ago() up to 60 days, else the local date "2026-11-30";
 * - clock(t): local "01:02:03" (console lines, where the date is the run's);
 * - axisValues: the tick labels of a uPlot time axis (unix seconds) in the same format:
 *   "14:05" ("14:05:30" below a minute apart), "11-30 14:05" where the day changes,
 *   "2026-11-30" a day apart or more (uPlot's default is a 12-hour "2:05pm").
 * `t` is an ISO-8601 text (UTC when it names no zone: the store writes UTC), unix
 * seconds, or a Date.
 *
 * apply(root) rewrites the times a page shows, from their `datetime` attribute (so it
 * can run again: relative texts are refreshed every 30 s):
 * - <time data-runstore-time> (or ="exact"): local time, "(3 h ago)" after it when under
 *   a day old; title: the stored UTC text and how long ago;
 * - <time data-runstore-time="relative">, <time class="runstore-when"> (run table
 *   cells) and, in a table of runs, a cell of a *_at column holding a bare ISO time:
 *   "3 h ago", the exact local time in the title;
 * - <time data-runstore-time="clock">: local "01:02:03", the local date and time in
 *   the title.
 * Text only: textContent and title, never HTML.
 */
(function () {
  "use strict";

  var ZONE = /([zZ]|[+-]\d\d:?\d\d)$/;
  var ISO = /^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([zZ]|[+-]\d\d:?\d\d)?$/;
  var DAY = 86400000;

  function parse(t) {
    var d = null;
    if (t instanceof Date) { d = t; }
    else if (typeof t === "number") { d = isFinite(t) ? new Date(t * 1000) : null; }
    else if (typeof t === "string" && ISO.test(t.trim())) {
      var text = t.trim().replace(" ", "T");
      // Date parses at most milliseconds reliably: drop the rest of the fraction.
      text = text.replace(/(\.\d{3})\d+/, "$1");
      d = new Date(ZONE.test(text) ? text : text + "Z");
    }
    return d && !isNaN(d.getTime()) ? d : null;
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function dateText(d) {
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }

  function clockText(d) {
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  function local(t) {
    var d = parse(t);
    return d ? dateText(d) + " " + clockText(d) : "";
  }

  function clock(t) {
    var d = parse(t);
    return d ? clockText(d) : "";
  }

  function ago(ms) {
    if (ms < 0) { return "in the future"; }
    var s = Math.floor(ms / 1000);
    if (s < 60) { return s + " s ago"; }
    if (s < 3600) { return Math.floor(s / 60) + " min ago"; }
    if (s < 86400) { return Math.floor(s / 3600) + " h ago"; }
    return Math.floor(s / 86400) + " d ago";
  }

  function relative(t, now) {
    var d = parse(t);
    if (!d) { return ""; }
    var age = (now == null ? Date.now() : now) - d.getTime();
    return age >= 0 && age < 60 * DAY ? ago(age) : dateText(d);
  }

  /* The style a node gets, or null when it is not a time this module shows. */
  function styleOf(node) {
    if (node.hasAttribute("data-runstore-time")) {
      return node.getAttribute("data-runstore-time") || "exact";
    }
    if (node.classList.contains("runstore-when")) { return "relative"; }
    return null;
  }

  function show(node, iso, style) {
    var d = parse(iso);
    if (!d) { return; }
    var age = Date.now() - d.getTime();
    if (style === "relative") {
      node.textContent = relative(d);
      node.title = local(d);
    } else if (style === "clock") {
      node.textContent = clockText(d);
      node.title = local(d);
    } else {
      node.textContent = local(d) + (age >= 0 && age < DAY ? " (" + ago(age) + ")" : "");
      node.title = iso + " · " + ago(age);
    }
  }

  /* Bare ISO times in the *_at columns of a table of runs (Datasette renders them as
   * the stored text): a <time> shown relative. */
  function wrapCells(root) {
    var cells = root.querySelectorAll(
      "table.rows-and-columns td[class*='_at']:not([data-runstore-time-done])");
    Array.prototype.forEach.call(cells, function (td) {
      td.setAttribute("data-runstore-time-done", "");
      if (!/(^|\s)col-\S*_at(\s|$)/.test(td.className) || td.children.length) { return; }
      var iso = td.textContent.trim();
      if (!parse(iso)) { return; }
      var time = document.createElement("time");
      time.setAttribute("datetime", iso);
      time.setAttribute("data-runstore-time", "relative");
      time.textContent = iso;
      td.textContent = "";
      td.appendChild(time);
    });
  }

  function apply(root) {
    root = root || document;
    if (root.querySelectorAll) { wrapCells(root); }
    var nodes = [];
    if (root.nodeType === 1 && root.matches("time")) { nodes.push(root); }
    Array.prototype.push.apply(nodes, root.querySelectorAll("time"));
    nodes.forEach(function (node) {
      var style = styleOf(node);
      if (style) { show(node, node.getAttribute("datetime") || "", style); }
    });
  }

  /* A uPlot axis `values` function for a time scale (unix seconds). */
  function axisValues(u, splits, axisIdx, space, incr) {
    var last = null;
    return splits.map(function (s) {
      var d = s == null ? null : parse(s);
      if (!d) { return ""; }
      if (incr >= 86400) { return dateText(d); }
      var day = dateText(d), t = clockText(d);
      var text = incr < 60 ? t : t.slice(0, 5);
      if (last !== null && day !== last) { text = day.slice(5) + " " + text; }
      last = day;
      return text;
    });
  }

  window.RunstoreTime = {
    parse: parse, local: local, clock: clock, ago: ago, relative: relative, apply: apply,
    axisValues: axisValues
  };

  function begin() {
    apply(document);
    setInterval(function () { if (!document.hidden) { apply(document); } }, 30000);
  }

  if (typeof document === "undefined") { return; }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", begin);
  } else {
    begin();
  }
})();
