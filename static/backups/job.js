// A backup job's admin page: its status and the bytes written so far follow the job live over
// /ws/jobs/backup/<id>/ (static/js/live-socket.js); the page reloads once the job has ended, to show its final
// record.
(function () {
  "use strict";

  const line = document.getElementById("job-live");
  if (!line) return;
  const FINISHED = ["completed", "failed", "cancelled"];
  const status = document.querySelector(".field-status .readonly");
  const written = document.querySelector(".field-written .readonly");

  function show(update) {
    if (FINISHED.includes(update.status)) {
      window.location.reload();
      return;
    }
    if (status) status.textContent = update.status.charAt(0).toUpperCase() + update.status.slice(1);
    const bytes = update.progress && update.progress.bytes_written;
    if (written && bytes) written.textContent = window.OpsdeckFormat.fileSize(bytes);
  }

  window.OpsdeckLive.liveSocket(line.dataset.socketPath, {
    banner: null, // the admin page has no banner: the live line says how it stands
    open: function () {
      line.textContent = "Live: status and bytes written update as the worker goes.";
    },
    message: function (update) {
      if (update.type === "job.update") show(update);
    },
    close: function (finalReason) {
      line.textContent = finalReason ? "Live updates stopped: " + finalReason + "." : "Live updates interrupted; reconnecting…";
    },
  });
})();
