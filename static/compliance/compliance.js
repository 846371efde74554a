// Compliance page: report rows follow their status and progress live over /ws/jobs/ (kind "report"),
// re-sync from the API after a reconnect, and the form shows only the filters the chosen kind understands.
(function () {
  "use strict";

  const root = document.getElementById("content-main");
  const table = document.getElementById("reports");
  if (!root || !table) return;
  const FINISHED = ["completed", "failed", "cancelled"];
  const STATUS_LABELS = {
    queued: "Queued",
    running: "Running",
    completed: "Completed",
    failed: "Failed",
    cancelling: "Cancelling",
    cancelled: "Cancelled",
  };
  const FILTERS_OF_KIND = { audit_trail: ["action_prefix", "actor"], subject_export: ["username"] };
  // A busy channel layer may drop an event (it caps what waits for each socket); unfinished rows are asked
  // about again this often, so a dropped "completed" never leaves a row stuck.
  const RESYNC_MS = 15000;

  function idUrl(template, id) {
    return template.replace("/0/", "/" + id + "/");
  }


  function cell(row, name) {
    return row.querySelector('[data-cell="' + name + '"]');
  }

  // A hash shows its first 12 characters; the whole value is in the title (and on the report's page, to copy).
  function setCode(target, value) {
    if (!value) return;
    const code = target.querySelector("code") || target.appendChild(document.createElement("code"));
    code.textContent = value.slice(0, 12) + "…";
    code.title = value;
  }

  function optionLabel(select, value) {
    const option = Array.from(select.options).find((item) => item.value === value);
    return option ? option.textContent : value;
  }

  // A row added live knows only the report's name until the API's detail tells what was asked.
  function describe(row, detail) {
    const form = document.getElementById("report-form");
    cell(row, "name").textContent = optionLabel(form.elements.kind, detail.kind);
    const time = window.OpsdeckFormat.timeElement;
    cell(row, "period").replaceChildren(time(detail.period_start), " – ", time(detail.period_end));
    cell(row, "format").textContent = optionLabel(form.elements.format, detail.format);
    cell(row, "owner").textContent = detail.requested_by || "schedule";
    cell(row, "created").replaceChildren(time(detail.created_at));
  }

  function withDetail(id, then) {
    fetch(idUrl(root.dataset.detailUrl, id), { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((detail) => detail && then(detail));
  }

  function rowFor(id, name) {
    let row = table.querySelector('tr[data-report-id="' + id + '"]');
    if (row) return row;
    const empty = document.getElementById("reports-empty");
    if (empty) empty.remove();
    row = document.getElementById("report-row-template").content.firstElementChild.cloneNode(true);
    row.dataset.reportId = id;
    const link = cell(row, "id").appendChild(document.createElement("a"));
    link.href = idUrl(root.dataset.reportUrl, id);
    link.textContent = id;
    cell(row, "name").textContent = name || "";
    table.tBodies[0].prepend(row);
    // Only what was asked: the status may have moved on since the detail was read, and events keep it current.
    withDetail(id, (detail) => describe(row, detail));
    return row;
  }

  // `data` is a live job.update (progress in data.progress) or the API's detail of the report.
  function update(data) {
    const progress = data.progress && typeof data.progress === "object" ? data.progress : data;
    const percent = typeof data.progress === "number" ? data.progress : progress.percent;
    const row = rowFor(data.id, data.name);
    row.className = "report-row status-" + data.status;
    const status = cell(row, "status");
    status.textContent = "";
    const label = status.appendChild(document.createElement("span"));
    label.className = "report-status";
    label.textContent = STATUS_LABELS[data.status] || data.status;
    if (data.error) {
      const error = status.appendChild(document.createElement("span"));
      error.className = "report-error errornote";
      error.textContent = data.error;
    }
    if (percent !== undefined && percent !== null) {
      cell(row, "progress").querySelector("progress").value = percent;
      cell(row, "progress").querySelector(".percent").textContent = percent + " %";
    }
    cell(row, "size").textContent = window.OpsdeckFormat.fileSize(progress.size_bytes);
    setCode(cell(row, "sha256"), progress.sha256);
    const files = cell(row, "files");
    if (data.status === "completed" && !files.querySelector("a")) {
      const download = files.appendChild(document.createElement("a"));
      download.className = "report-download";
      download.href = idUrl(root.dataset.downloadUrl, data.id);
      download.textContent = "Download";
      files.appendChild(document.createTextNode(" · "));
      const manifest = files.appendChild(document.createElement("a"));
      manifest.className = "report-manifest";
      manifest.href = idUrl(root.dataset.manifestUrl, data.id);
      manifest.textContent = "Manifest";
    }
  }

  // Events sent before the socket opened (the page's first load, or a reconnect) were missed: ask the API
  // about every row still in progress.
  function resync() {
    table.querySelectorAll("tr[data-report-id]").forEach(function (row) {
      if (!row.dataset.reportId || FINISHED.some((status) => row.classList.contains("status-" + status))) return;
      withDetail(row.dataset.reportId, update);
    });
  }


  // Only the filters of the chosen kind; a period preset fills the two dates and shows as pressed while they match.
  const form = document.getElementById("report-form");
  function showFields() {
    const kind = form.elements.kind.value;
    ["action_prefix", "actor", "username"].forEach(function (name) {
      form.querySelector('[data-field="' + name + '"]').hidden = !(FILTERS_OF_KIND[kind] || []).includes(name);
    });
  }
  function markPreset() {
    form.querySelectorAll("button[data-preset]").forEach(function (button) {
      const matches =
        button.dataset.start === form.elements.start_date.value && button.dataset.end === form.elements.end_date.value;
      button.setAttribute("aria-pressed", String(matches));
    });
  }
  if (form) {
    form.elements.kind.addEventListener("change", showFields);
    form.querySelectorAll("button[data-preset]").forEach(function (button) {
      button.addEventListener("click", function () {
        form.elements.start_date.value = button.dataset.start;
        form.elements.end_date.value = button.dataset.end;
        markPreset();
      });
    });
    form.elements.start_date.addEventListener("input", markPreset);
    form.elements.end_date.addEventListener("input", markPreset);
    showFields();
    markPreset();
  }

  window.OpsdeckLive.liveSocket(root.dataset.socketPath, {
    open: resync,
    message: function (data) {
      if (data.type === "job.update" && data.kind === "report") update(data);
    },
  });
  window.setInterval(resync, RESYNC_MS);
})();
