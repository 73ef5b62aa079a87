/* runstore run tables: pick runs with the checkboxes beside their names and open
 * the compare page. The selection is kept in sessionStorage (per store), so runs
 * picked on one page of the table, or under one filter, stay picked on the next.
 * Datasette loads this script in <head>, so it waits for the table to be parsed.
 */
(function () {
  "use strict";

  var MIN = 2, MAX = 10;

  function init() {
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input.runstore-pick"));
    if (!boxes.length) { return; }
    var compareUrl = boxes[0].getAttribute("data-compare-url");
    var storageKey = "runstore-pick:" + compareUrl;

    function load() {
      try {
        var saved = JSON.parse(window.sessionStorage.getItem(storageKey) || "[]");
        return Array.isArray(saved) ? saved.map(String) : [];
      } catch (e) {
        return [];
      }
    }

    function save(keys) {
      try { window.sessionStorage.setItem(storageKey, JSON.stringify(keys)); } catch (e) { /* private mode */ }
    }

    var selected = load();

    var bar = document.createElement("div");
    bar.className = "runstore-compare-bar";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "runstore-compare-button";
    var status = document.createElement("span");
    status.className = "runstore-compare-status";
    var clear = document.createElement("button");
    clear.type = "button";
    clear.className = "runstore-compare-clear";
    clear.textContent = "Clear";
    bar.appendChild(button);
    bar.appendChild(status);
    bar.appendChild(clear);

    var table = boxes[0].closest("table");
    var anchor = (table && table.closest(".table-wrapper")) || table;
    if (anchor && anchor.parentNode) {
      anchor.parentNode.insertBefore(bar, anchor);
    } else {
      document.body.appendChild(bar);
    }

    function update() {
      var n = selected.length;
      button.textContent = "Compare selected (" + n + ")";
      button.disabled = n < MIN || n > MAX;
      clear.hidden = n === 0;
      status.textContent = n > MAX ? " pick at most " + MAX + " runs"
        : n < MIN ? " pick " + MIN + " to " + MAX + " runs" : "";
      save(selected);
    }

    boxes.forEach(function (box) {
      box.checked = selected.indexOf(box.value) >= 0;
      box.addEventListener("change", function () {
        var at = selected.indexOf(box.value);
        if (box.checked && at < 0) { selected.push(box.value); }
        if (!box.checked && at >= 0) { selected.splice(at, 1); }
        update();
      });
    });

    button.addEventListener("click", function () {
      if (selected.length < MIN || selected.length > MAX) { return; }
      window.location.href = compareUrl + "?runs=" + selected.map(encodeURIComponent).join(",");
    });

    clear.addEventListener("click", function () {
      selected = [];
      boxes.forEach(function (box) { box.checked = false; });
      update();
    });

    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
