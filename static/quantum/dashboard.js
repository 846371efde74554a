// Quantum dashboard and job page: live status over websockets (static/js/live-socket.js), the submit
// form and the jobs-per-minute chart. Server data comes in data-* attributes and JSON script blocks.
(function () {
  "use strict";

  const liveSocket = window.OpsdeckLive.liveSocket;
  const isNewer = window.OpsdeckLive.isNewer;
  const setBadge = window.OpsdeckLive.setBadge;
  const format = window.OpsdeckFormat;
  const SVG_NS = "http://www.w3.org/2000/svg";

  function idUrl(template, id) {
    return template.replace("/0/", "/" + id + "/");
  }

  // --- Dashboard

  function initDashboard(root) {
    const body = document.getElementById("jobs-body");
    const rowTemplate = document.getElementById("job-row-template");
    const noJobs = document.getElementById("no-jobs");
    const maxRows = Number(root.dataset.recentJobs);
    const counters = {};
    document.querySelectorAll("[data-count-for]").forEach(function (element) {
      counters[element.dataset.countFor] = element;
    });
    const chart = jobsPerMinuteChart(root);

    function rowOf(id) {
      return body.querySelector('tr[data-job-id="' + id + '"]');
    }

    // A counter keeps its number in data-count and shows it with thousands separators.
    function setCount(counter, value) {
      counter.dataset.count = value;
      counter.textContent = format.number(value);
    }

    function bump(status, delta) {
      const counter = counters[status];
      if (counter) setCount(counter, Number(counter.dataset.count) + delta);
    }

    // Rows stay newest first and at most maxRows long; older jobs than those shown are not recent.
    function insertRow(message) {
      const rows = body.rows;
      if (rows.length >= maxRows && message.id < Number(rows[rows.length - 1].dataset.jobId)) return null;
      const row = rowTemplate.content.firstElementChild.cloneNode(true);
      row.dataset.jobId = message.id;
      const link = row.querySelector('[data-field="id"] a');
      link.href = idUrl(root.dataset.jobUrl, message.id);
      link.textContent = "#" + message.id;
      row.querySelector('[data-field="name"]').textContent = message.name || "";
      row.querySelector('[data-field="owner"]').textContent = message.owner || "";
      const before = Array.prototype.find.call(rows, function (other) {
        return Number(other.dataset.jobId) < message.id;
      });
      body.insertBefore(row, before || null);
      while (rows.length > maxRows) rows[rows.length - 1].remove();
      noJobs.hidden = true;
      fillStaticCells(row, message.id);
      return row;
    }

    // Qubits, shots and creation time are not in live messages: take them from the server's rendering of the row.
    function fillStaticCells(row, id) {
      fetch(idUrl(root.dataset.rowUrl, id), { credentials: "same-origin" })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (!html) return;
          const holder = document.createElement("tbody");
          holder.innerHTML = html;
          holder.querySelectorAll("[data-static]").forEach(function (cell) {
            const target = row.querySelector('[data-field="' + cell.dataset.field + '"]');
            if (target) target.replaceChildren.apply(target, Array.from(cell.childNodes));
          });
        })
        .catch(function () {
          /* The cells stay empty; the next page load shows them. */
        });
    }

    // Applies one job.update: changes the row in place (or adds it), the counts and the chart.
    function apply(message) {
      let row = rowOf(message.id);
      let previous = null;
      if (row) {
        if (!isNewer(message, row.dataset.updatedAt)) return;
        previous = row.dataset.status;
      } else {
        row = insertRow(message);
        if (!row) return;
      }
      if (message.updated_at) row.dataset.updatedAt = message.updated_at;
      row.querySelector('[data-field="queue_position"]').textContent = message.queue_position == null ? "" : message.queue_position;
      if (previous === message.status) return;
      if (previous) bump(previous, -1);
      bump(message.status, 1);
      row.dataset.status = message.status;
      setBadge(row.querySelector('[data-field="status"] .badge'), message.status);
      chart.finished(message, previous);
    }

    function resyncCounts() {
      fetch(root.dataset.countsUrl, { credentials: "same-origin" })
        .then(function (response) {
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data) return;
          Object.keys(data.counts).forEach(function (status) {
            if (counters[status]) setCount(counters[status], data.counts[status]);
          });
        })
        .catch(function () {
          /* Counts catch up on the next reconnect or page load. */
        });
    }

    let countsStale = false;
    liveSocket(root.dataset.socketPath, {
      open: function (isReconnect) {
        // Events published while disconnected are lost: the snapshot fixes the rows, then the totals are fetched
        // (after the snapshot, whose new rows count too, so that the fetched totals are the last word).
        countsStale = isReconnect;
      },
      message: function (data) {
        if (data.type === "jobs.snapshot") {
          data.jobs
            .filter(function (job) {
              return job.kind === "quantum";
            })
            .slice()
            .reverse()
            .forEach(apply);
          if (countsStale) resyncCounts();
          countsStale = false;
        } else if (data.type === "job.update" && data.kind === "quantum") {
          apply(data);
        }
      },
    });

    const form = document.getElementById("submit-job");
    if (form) submitForm(form, root, apply);
  }

  // --- Jobs-per-minute chart (plain SVG)

  function jobsPerMinuteChart(root) {
    const svg = document.getElementById("jobs-per-minute");
    const empty = document.getElementById("chart-empty");
    const minutes = Number(root.dataset.chartMinutes);
    const counted = new Set(root.dataset.chartStatuses.split(" "));
    // Buckets follow the server's clock, which stamps the events.
    const clockOffset = Date.parse(root.dataset.now) - Date.now();
    const loadedAt = Date.parse(root.dataset.now);
    const perMinute = new Map();
    JSON.parse(document.getElementById("jobs-per-minute-data").textContent).forEach(function (entry) {
      perMinute.set(Math.floor(Date.parse(entry.minute) / 60000), entry.count);
    });

    function element(name, attributes, text) {
      const node = document.createElementNS(SVG_NS, name);
      Object.keys(attributes).forEach(function (key) {
        node.setAttribute(key, attributes[key]);
      });
      if (text !== undefined) node.textContent = text;
      return node;
    }

    function draw() {
      const width = 640;
      const height = 180;
      const left = 36;
      const bottom = 150;
      const top = 14;
      const nowMinute = Math.floor((Date.now() + clockOffset) / 60000);
      const values = [];
      for (let minute = nowMinute - minutes + 1; minute <= nowMinute; minute += 1) {
        values.push({ minute: minute, count: perMinute.get(minute) || 0 });
      }
      const tallest = Math.max(1, Math.max.apply(null, values.map(function (value) { return value.count; })));
      const slot = (width - left - 8) / minutes;
      svg.replaceChildren();
      svg.appendChild(element("line", { x1: left, y1: top, x2: left, y2: bottom, stroke: "currentColor" }));
      svg.appendChild(element("line", { x1: left, y1: bottom, x2: width - 8, y2: bottom, stroke: "currentColor" }));
      svg.appendChild(element("text", { x: left - 4, y: top + 8, "text-anchor": "end", "font-size": 10 }, String(tallest)));
      svg.appendChild(element("text", { x: left - 4, y: bottom, "text-anchor": "end", "font-size": 10 }, "0"));
      let total = 0;
      values.forEach(function (value, index) {
        total += value.count;
        const barHeight = ((bottom - top) * value.count) / tallest;
        const x = left + index * slot;
        const at = new Date(value.minute * 60000).toISOString();
        const bar = element("rect", { class: "bar", x: x + 1, y: bottom - barHeight, width: slot - 2, height: barHeight, "data-count": value.count });
        bar.appendChild(element("title", {}, format.dateTime(at) + ": " + format.count(value.count, "job")));
        svg.appendChild(bar);
        if ((minutes - 1 - index) % 5 === 0) {
          svg.appendChild(element("text", { x: x + slot / 2, y: bottom + 16, "text-anchor": "middle", "font-size": 10 }, format.clock(at)));
        }
      });
      svg.dataset.total = total;
      // An empty chart is only axes: the empty state says so instead.
      svg.toggleAttribute("hidden", total === 0);
      empty.hidden = total > 0;
    }

    draw();
    window.setInterval(draw, 15000);

    const chartedIds = new Set();
    return {
      // A job that reached a charted status: count it once, unless the initial figures already hold it.
      finished: function (message, previous) {
        if (!counted.has(message.status) || counted.has(previous) || chartedIds.has(message.id)) return;
        const at = Date.parse(message.updated_at);
        if (!previous && !(at >= loadedAt)) return;
        chartedIds.add(message.id);
        const minute = Math.floor(at / 60000);
        perMinute.set(minute, (perMinute.get(minute) || 0) + 1);
        draw();
      },
    };
  }

  // --- Submit form: JSON to the API, its field errors shown next to the fields

  function submitForm(form, root, apply) {
    const result = document.getElementById("submit-result");
    const token = form.querySelector("[name=csrfmiddlewaretoken]").value;
    const field = function (name) {
      return form.elements.namedItem(name);
    };

    // Numbers go as numbers; anything else goes as typed, so the API names the problem.
    function number(name) {
      const text = field(name).value.trim();
      if (text === "") return null;
      return Number.isNaN(Number(text)) ? text : Number(text);
    }

    function clearErrors() {
      form.querySelectorAll("[data-error-for]").forEach(function (element) {
        element.textContent = "";
      });
      form.querySelectorAll("[aria-invalid]").forEach(function (element) {
        element.removeAttribute("aria-invalid");
      });
      result.textContent = "";
      result.className = "";
    }

    function showError(path, message) {
      let target = form.querySelector('[data-error-for="' + path + '"]');
      // A nested field without its own slot (noise.x) falls back to its parent's, then to the form's.
      for (let parent = path; !target && parent.includes("."); ) {
        parent = parent.slice(0, parent.lastIndexOf("."));
        target = form.querySelector('[data-error-for="' + parent + '"]');
      }
      if (!target) {
        target = form.querySelector('[data-error-for="non_field_errors"]');
        message = path === "non_field_errors" ? message : path + ": " + message;
      }
      target.textContent = (target.textContent ? target.textContent + " " : "") + message;
      const describedInput = form.querySelector('[aria-describedby="' + target.id + '"]');
      if (describedInput) describedInput.setAttribute("aria-invalid", "true");
    }

    function showErrors(errors, prefix) {
      Object.keys(errors).forEach(function (key) {
        const value = errors[key];
        const path = prefix ? prefix + "." + key : key;
        if (Array.isArray(value)) showError(path, value.join(" "));
        else if (value && typeof value === "object") showErrors(value, path);
        else showError(path, String(value));
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors();
      const payload = {
        name: field("name").value,
        source: field("source").value,
        shots: number("shots"),
        method: field("method").value,
        measure_all: field("measure_all").checked,
        noise: { depolarizing_1q: number("depolarizing_1q"), depolarizing_2q: number("depolarizing_2q"), readout: number("readout") },
      };
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(root.dataset.submitUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token },
        body: JSON.stringify(payload),
      })
        .then(function (response) {
          return response
            .json()
            .catch(function () {
              return { detail: "The portal answered HTTP " + response.status + "." };
            })
            .then(function (data) {
              if (response.ok) {
                apply({ id: data.id, name: data.name, owner: data.owner, status: data.status, updated_at: data.updated_at, queue_position: data.queue_position });
                const link = document.createElement("a");
                link.href = idUrl(root.dataset.jobUrl, data.id);
                link.textContent = "Job #" + data.id;
                result.replaceChildren(link, " submitted.");
                result.className = "ok";
              } else if (data.errors) {
                showErrors(data.errors, "");
              } else {
                result.textContent = data.detail || "Submitting failed (HTTP " + response.status + ").";
                result.className = "error";
              }
            });
        })
        .catch(function () {
          result.textContent = "Could not reach the portal; check the connection and submit again.";
          result.className = "error";
        })
        .finally(function () {
          button.disabled = false;
        });
    });
  }

  // --- Job page

  function initJobPage(root) {
    const badge = document.getElementById("job-status");
    const position = document.getElementById("job-queue-position");
    const error = document.getElementById("job-error");
    const cancel = document.getElementById("cancel-job");
    const finished = new Set(root.dataset.finishedStatuses.split(" "));

    function reloadResult() {
      fetch(root.dataset.resultUrl, { credentials: "same-origin" })
        .then(function (response) {
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html) document.getElementById("job-result").innerHTML = html;
        })
        .catch(function () {
          /* The result shows on the next page load. */
        });
    }

    liveSocket(root.dataset.socketPath, {
      open: function () {},
      message: function (message) {
        if (message.type !== "job.update" || String(message.id) !== root.dataset.jobId) return;
        if (!isNewer(message, root.dataset.updatedAt)) return;
        const previous = root.dataset.status;
        root.dataset.updatedAt = message.updated_at || "";
        root.dataset.status = message.status;
        setBadge(badge, message.status);
        position.textContent = message.queue_position == null ? "—" : message.queue_position;
        error.textContent = message.error || "";
        error.hidden = !message.error;
        if (finished.has(message.status)) {
          if (cancel) cancel.hidden = true;
          if (!finished.has(previous)) reloadResult();
        }
      },
    });
  }

  const dashboard = document.getElementById("quantum-dashboard");
  if (dashboard) initDashboard(dashboard);
  const jobPage = document.getElementById("quantum-job");
  if (jobPage) initJobPage(jobPage);
})();
