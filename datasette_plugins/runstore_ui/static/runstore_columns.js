/* runstore: the column chooser of a project's runs table (the view runs/<project>).
 * Which columns show is remembered in localStorage per table; the filter, sort and
 * search stay in the URL (Datasette's own), so a view can be bookmarked and shared.
 * Columns are hidden by the class Datasette gives each column's th and td cells.
 * Default: run_key, id and entity hidden (the name links to the run).
 */
(function () {
  "use strict";

  var DEFAULT_HIDDEN = ["run_key", "id", "entity"];

  function init() {
    var table = document.querySelector("table.rows-and-columns");
    if (!table) { return; }
    var heads = Array.prototype.slice.call(table.querySelectorAll("thead th[data-column]"));
    if (!heads.length) { return; }
    var storageKey = "runstore-columns:" + window.location.pathname.replace(/\.(json|csv)$/, "");

    function load() {
      try {
        var saved = JSON.parse(window.localStorage.getItem(storageKey) || "null");
        return Array.isArray(saved) ? saved.map(String) : null;
      } catch (e) { return null; }
    }
    function save(hidden) {
      try { window.localStorage.setItem(storageKey, JSON.stringify(hidden)); } catch (e) { /* private mode */ }
    }

    var hidden = load() || DEFAULT_HIDDEN.slice();
    var style = document.createElement("style");
    document.head.appendChild(style);

    function cssClass(th) {
      for (var i = 0; i < th.classList.length; i++) {
        if (th.classList[i].indexOf("col-") === 0) { return th.classList[i]; }
      }
      return null;
    }

    function apply() {
      var rules = [];
      heads.forEach(function (th) {
        var name = th.getAttribute("data-column");
        var cls = cssClass(th);
        if (cls && hidden.indexOf(name) !== -1) {
          rules.push("table.rows-and-columns ." + CSS.escape(cls) + " { display: none; }");
        }
      });
      style.textContent = rules.join("\n");
      count.textContent = (heads.length - rules.length) + " of " + heads.length + " shown";
    }

    var box = document.createElement("details");
    box.className = "runstore-columns";
    var summary = document.createElement("summary");
    summary.textContent = "Columns ";
    var count = document.createElement("span");
    count.className = "runstore-columns-count";
    summary.appendChild(count);
    box.appendChild(summary);

    var filter = document.createElement("input");
    filter.type = "search";
    filter.placeholder = "Filter keys";
    filter.className = "runstore-columns-filter";
    box.appendChild(filter);

    var tools = document.createElement("div");
    tools.className = "runstore-columns-tools";
    [["all", "Show all"], ["none", "Hide keys"], ["reset", "Default"]].forEach(function (pair) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = pair[1];
      button.setAttribute("data-action", pair[0]);
      tools.appendChild(button);
    });
    box.appendChild(tools);

    var list = document.createElement("div");
    list.className = "runstore-columns-list";
    var boxes = [];
    var groups = {};
    heads.forEach(function (th) {
      var name = th.getAttribute("data-column");
      var group = name.indexOf("config.") === 0 ? "config" :
        (name.indexOf("summary.") === 0 ? "summary" : "run");
      if (!groups[group]) {
        var fieldset = document.createElement("fieldset");
        var legend = document.createElement("legend");
        legend.textContent = group;
        fieldset.appendChild(legend);
        groups[group] = fieldset;
        list.appendChild(fieldset);
      }
      var label = document.createElement("label");
      var input = document.createElement("input");
      input.type = "checkbox";
      input.value = name;
      input.checked = hidden.indexOf(name) === -1;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + name));
      groups[group].appendChild(label);
      boxes.push(input);
    });
    box.appendChild(list);

    list.addEventListener("change", function () {
      hidden = boxes.filter(function (b) { return !b.checked; }).map(function (b) { return b.value; });
      save(hidden);
      apply();
    });
    tools.addEventListener("click", function (event) {
      var action = event.target.getAttribute("data-action");
      if (!action) { return; }
      if (action === "all") { hidden = []; }
      if (action === "none") {
        hidden = boxes.map(function (b) { return b.value; }).filter(function (n) {
          return n.indexOf("config.") === 0 || n.indexOf("summary.") === 0;
        });
      }
      if (action === "reset") { hidden = DEFAULT_HIDDEN.slice(); }
      boxes.forEach(function (b) { b.checked = hidden.indexOf(b.value) === -1; });
      save(hidden);
      apply();
    });
    filter.addEventListener("input", function () {
      var needle = filter.value.toLowerCase();
      boxes.forEach(function (b) {
        b.parentNode.hidden = needle !== "" && b.value.toLowerCase().indexOf(needle) === -1;
      });
    });

    var anchor = table.closest(".table-wrapper") || table;
    anchor.parentNode.insertBefore(box, anchor);
    apply();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
