// Live progress of a job or a batch page: polls the page's API (data-api) until everything ended.
(function () {
  "use strict";
  var root = document.getElementById("job") || document.getElementById("batch");
  if (!root) return;
  var PERIOD_MS = 1000;

  function set(scope, name, value) {
    var node = scope.querySelector('[data-field="' + name + '"]');
    if (!node) return null;
    if (node.tagName === "PROGRESS") node.value = value;
    else node.textContent = value;
    return node;
  }

  function outcome(cell, job) {
    cell.textContent = "";
    if (job.error) {
      cell.textContent = job.error.message;
    } else if (job.result_url) {
      var link = document.createElement("a");
      link.href = job.result_url;
      link.textContent = job.result && job.result.band ? job.result.band + " = " + job.result.mag.toFixed(3) : "point";
      cell.appendChild(link);
    } else if (job.result && job.result.dry_run) {
      cell.textContent = job.result.band + " = " + job.result.mag.toFixed(3) + " (dry run)";
    }
  }

  function showJob(job) {
    set(root, "state", job.state);
    set(root, "stage", job.stage);
    set(root, "progress", job.progress);
    var error = root.querySelector('[data-field="error"]');
    if (job.error) { error.textContent = job.error.message; error.hidden = false; }
    var result = root.querySelector('[data-field="result"]');
    if (job.result_url) { result.querySelector("a").href = job.result_url; result.hidden = false; }
    return job.state === "succeeded" || job.state === "failed";
  }

  function showBatch(batch) {
    var s = batch.summary;
    set(root, "progress", s.progress);
    set(root, "summary", s.total + " frames: " + s.states.succeeded + " done, " + s.states.failed +
      " failed, " + (s.states.running) + " running, " + (s.states.queued + s.states.pending) + " waiting");
    batch.jobs.forEach(function (job) {
      var row = root.querySelector('tr[data-job="' + job.id + '"]');
      if (!row) return;
      set(row, "state", job.state);
      set(row, "progress", job.state === "succeeded" || job.state === "failed" ? 1 : job.progress);
      outcome(row.querySelector('[data-field="outcome"]'), job);
    });
    return s.finished;
  }

  function poll() {
    fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        var done = data && (root.id === "job" ? showJob(data) : showBatch(data));
        if (!done) setTimeout(poll, PERIOD_MS);
      })
      .catch(function () { setTimeout(poll, PERIOD_MS * 5); });
  }
  poll();
})();
