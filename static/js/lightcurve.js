// The light-curve page: draws the figure the server prepared, keeps the calendar axis aligned
// with the MJD axis, sorts the table of points, and asks before a point is deleted.
(function () {
  "use strict";
  var MJD_UNIX_EPOCH = 40587;
  var DAY_MS = 86400000;

  function mjdToDate(mjd) {
    return new Date((mjd - MJD_UNIX_EPOCH) * DAY_MS).toISOString().replace("T", " ").replace("Z", "");
  }

  // plotly cannot link a linear MJD axis to a date axis, so follow every change of the MJD range.
  function alignCalendar(plot, change) {
    var touchesMjd = Object.keys(change || {}).some(function (key) {
      return key.indexOf("xaxis.") === 0;
    });
    if (touchesMjd) {
      window.Plotly.relayout(plot, { "xaxis2.range": plot.layout.xaxis.range.map(mjdToDate) });
    }
  }

  function drawPlot() {
    var holder = document.getElementById("lightcurve");
    var source = document.getElementById("lightcurve-figure");
    if (!holder || !source || !window.Plotly) {
      return;
    }
    var figure = JSON.parse(source.textContent);
    window.gsafollowup.plot(holder, figure)
      .then(function (plot) {
        plot.on("plotly_relayout", function (change) {
          alignCalendar(plot, change);
        });
        holder.dataset.ready = "1";
      });
  }

  function sortKey(row, column, numeric) {
    var cell = row.cells[column];
    var text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (!numeric) {
      return text.toLowerCase();
    }
    var value = parseFloat(text);
    return isNaN(value) ? Infinity : value;
  }

  function makeSortable(table) {
    var body = table.tBodies[0];
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, column) {
      if (!th.textContent.trim()) {
        return;
      }
      th.classList.add("sortable-column");
      th.title = "Sort by " + th.textContent.trim();
      th.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var numeric = th.classList.contains("num");
        headers.forEach(function (other) {
          other.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var keyed = Array.prototype.map.call(body.rows, function (row) {
          return [sortKey(row, column, numeric), row];
        });
        keyed.sort(function (a, b) {
          var order = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
          return ascending ? order : -order;
        });
        var fragment = document.createDocumentFragment();
        keyed.forEach(function (pair) {
          fragment.appendChild(pair[1]);
        });
        body.appendChild(fragment);
      });
    });
  }

  // The band and observatory filters above the table: a row shows when it matches both.
  function filterRows() {
    var form = document.getElementById("points-filter");
    var table = document.getElementById("points");
    if (!form || !table) {
      return;
    }
    var band = form.querySelector("[name=band]");
    var observatory = form.querySelector("[name=observatory]");
    var count = document.getElementById("points-shown");
    function apply() {
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var ok =
          (!band.value || row.cells[3].textContent === band.value) &&
          (!observatory.value || row.cells[8].textContent === observatory.value);
        row.hidden = !ok;
        shown += ok ? 1 : 0;
      });
      count.textContent = shown + " of " + table.tBodies[0].rows.length + " points shown";
    }
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
    });
    form.hidden = false;
    apply();
  }

  function confirmDeletion() {
    var form = document.getElementById("delete-point");
    if (!form) {
      return;
    }
    form.addEventListener("submit", function (event) {
      var id = event.submitter ? event.submitter.value : "";
      if (!window.confirm("Delete follow-up point " + id + "? Curators can restore it.")) {
        event.preventDefault();
      }
    });
  }

  drawPlot();
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  filterRows();
  confirmDeletion();
})();
