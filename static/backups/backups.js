// A backup job's page in the portal: its status, bytes written and error follow the job live over
// /ws/jobs/backup/<id>/ (static/js/live-socket.js); once it has ended the page reloads to show its result
// (the new backup, or the verification's checklist).
(function () {
  "use strict";

  const root = document.getElementById("backup-job");
  if (!root) return;
  const live = window.OpsdeckLive;
  const finished = new Set(root.dataset.finishedStatuses.split(" "));
  const badge = document.getElementById("job-status");
  const written = document.getElementById("job-written");
  const error = document.getElementById("job-error");


  live.liveSocket(root.dataset.socketPath, {
    open: function () {},
    message: function (message) {
      if (message.type !== "job.update" || String(message.id) !== root.dataset.jobId) return;
      if (!live.isNewer(message, root.dataset.updatedAt)) return;
      root.dataset.updatedAt = message.updated_at || "";
      live.setBadge(badge, message.status);
      const bytes = message.progress && message.progress.bytes_written;
      if (written && bytes) written.textContent = window.OpsdeckFormat.fileSize(bytes);
      error.textContent = message.error || "";
      error.hidden = !message.error;
      if (finished.has(message.status)) window.location.reload();
    },
  });
})();
