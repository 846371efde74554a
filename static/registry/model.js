// A registered model's page: the try-it box posts to the API's predict action (its limits and messages are the
// API's own), and the job rows and new versions' validation follow live over /ws/jobs/ (static/js/live-socket.js).
(function () {
  "use strict";

  const root = document.getElementById("registry-model");
  if (!root) return;

  // The admin shell's script (django-unfold, on every page) copies a chosen file's name into the first text input
  // three levels up, meant for its own file widget: here that is the job form's Name, or nothing (a script error).
  // The page's plain file inputs keep their change to themselves; this runs before that script attaches its own.
  root.querySelectorAll("input[type=file]").forEach(function (input) {
    input.addEventListener("change", function (event) {
      event.stopImmediatePropagation();
    });
  });
  const finished = new Set(root.dataset.finishedStatuses.split(" "));

  // --- Jobs: the rows of this page's table, kept current; a reconnect's snapshot repairs missed updates.

  function cell(row, name) {
    return row.querySelector('[data-cell="' + name + '"]');
  }

  function apply(message) {
    if (message.type !== "job.update" || message.kind !== "inference") return;
    const row = document.querySelector('#job-rows tr[data-job-id="' + message.id + '"]');
    if (!row || !window.OpsdeckLive.isNewer(message, row.dataset.updatedAt)) return;
    row.dataset.updatedAt = message.updated_at || "";
    row.dataset.status = message.status;
    const pill = cell(row, "status").querySelector(".pill");
    pill.textContent = message.status;
    pill.className = "pill pill-" + message.status;
    cell(row, "error").textContent = message.error || "";
    const progress = message.progress || {};
    const bar = cell(row, "progress").querySelector("progress");
    bar.max = progress.total || 0;
    bar.value = progress.done || 0;
    const number = window.OpsdeckFormat.number;
    cell(row, "rows").textContent = number(progress.done || 0) + " / " + number(progress.total || 0);
    const result = cell(row, "result");
    if (message.status === "completed" && !result.querySelector("a")) {
      const link = document.createElement("a");
      link.href = root.dataset.resultUrl.replace("/0/", "/" + message.id + "/");
      link.download = "";
      link.textContent = "Download";
      result.replaceChildren(link);
    }
    row.classList.toggle("finished", finished.has(message.status));
  }

  // --- Versions: a new version's validation, as the worker finishes it.

  const usable = new Set(root.dataset.usable.split(" ").filter(Boolean).map(Number));

  function applyVersion(version) {
    if (version.model !== root.dataset.model) return;
    const row = document.querySelector('#version-table tr[data-version="' + version.version + '"]');
    if (!row || !window.OpsdeckLive.isNewer(version, row.dataset.updatedAt)) return;
    row.dataset.updatedAt = version.updated_at || "";
    row.dataset.status = version.status;
    const pill = document.createElement("span");
    pill.className = "pill pill-" + version.status;
    pill.textContent = version.status;
    const reason = document.createElement("span");
    reason.className = "error";
    reason.textContent = version.status_reason || "";
    cell(row, "version-status").replaceChildren(pill, " ", reason);
    if (version.status === "ready" && !usable.has(version.version)) {
      document.getElementById("version-ready-text").textContent =
        "v" + version.version + " is ready: reload the page to try it, run jobs with it and point aliases at it.";
      document.getElementById("version-ready").hidden = false;
    }
  }

  // Validations that finished before the socket opened (or while it was down) were missed: ask the API.
  function resyncVersions() {
    if (!document.querySelector('#version-table tr[data-status="validating"]')) return;
    const headers = { Accept: "application/json" };
    fetch(root.dataset.versionsUrl + "?page_size=500", { credentials: "same-origin", headers: headers })
      .then(function (response) {
        return response.ok ? response.json() : { results: [] };
      })
      .then(function (data) {
        data.results.forEach(function (version) {
          applyVersion(Object.assign({ updated_at: version.validated_at }, version));
        });
      })
      // Unanswered, the rows stay as they are until the next reconnect asks again.
      .catch(function () {});
  }

  document.getElementById("version-ready-reload").addEventListener("click", function () {
    window.location.reload();
  });

  window.OpsdeckLive.liveSocket(root.dataset.socketPath, {
    open: resyncVersions,
    message: function (data) {
      if (data.type === "jobs.snapshot") {
        data.jobs.forEach(function (job) {
          apply(Object.assign({ type: "job.update" }, job));
        });
      } else if (data.type === "version.update") {
        applyVersion(data);
      } else {
        apply(data);
      }
    },
  });

  const upload = document.getElementById("version-upload-form");
  if (upload) {
    upload.addEventListener("submit", function () {
      upload.querySelector("button[type=submit]").disabled = true;
      document.getElementById("version-upload-progress").hidden = false;
    });
  }

  // --- Try it

  const form = document.getElementById("try-it-form");
  if (!form) return;
  const error = document.getElementById("try-it-error");
  const result = document.getElementById("try-it-result");
  const outputs = document.querySelector("#try-it-outputs tbody");

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    result.hidden = true;
  }

  // One output per input, whatever the task: a label and score, generated or summary text, entities, a vector.
  function describe(output) {
    if (Array.isArray(output) && output.length && typeof output[0] === "number") return ["vector of " + window.OpsdeckFormat.count(output.length, "number"), ""];
    if (Array.isArray(output) && output.length && Array.isArray(output[0])) return ["vectors: " + output.length + " × " + output[0].length, ""];
    if (Array.isArray(output) && output.length && output[0].entity_group === undefined && output[0].entity === undefined) return describe(output[0]);
    if (Array.isArray(output)) {
      return [output.map(function (item) { return item.word + " (" + (item.entity_group || item.entity) + ")"; }).join(", ") || "no entities", ""];
    }
    if (output && typeof output === "object") {
      const text = output.label || output.token_str || output.generated_text || output.summary_text;
      if (text !== undefined) return [text, typeof output.score === "number" ? output.score.toFixed(3) : ""];
    }
    return [String(output), ""];
  }

  function show(texts, data) {
    error.hidden = true;
    document.getElementById("try-it-answered").textContent =
      "Answered by v" + data.version + (data.alias ? " (alias " + data.alias + ")" : "") + ".";
    outputs.replaceChildren();
    data.outputs.forEach(function (output, index) {
      const row = outputs.insertRow();
      [texts[index]].concat(describe(output)).forEach(function (value) {
        row.insertCell().textContent = value;
      });
    });
    result.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const texts = form.elements.texts.value.split("\n").filter(function (line) {
      return line.trim() !== "";
    });
    if (!texts.length) {
      showError("Type at least one text, one per line.");
      return;
    }
    const target = form.elements.target.value;
    const payload = { inputs: texts };
    if (target.startsWith("alias:")) payload.alias = target.slice("alias:".length);
    else payload.version = Number(target.slice("version:".length));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    fetch(form.dataset.predictUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
      },
      body: JSON.stringify(payload),
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return { detail: "The portal answered HTTP " + response.status + "." };
          })
          .then(function (data) {
            if (response.ok) show(texts, data);
            else showError(data.detail || "The prediction failed (HTTP " + response.status + ").");
          });
      })
      .catch(function () {
        showError("Could not reach the portal; check the connection and try again.");
      })
      .finally(function () {
        button.disabled = false;
      });
  });
})();

// Removing an alias refuses every later request naming it: one more question first.
(function () {
  "use strict";
  document.querySelectorAll("#alias-table form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
