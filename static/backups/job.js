// A backup job's admin page: its status and the bytes written so far follow the job live over
// /ws/jobs/backup/<id>/; the page reloads once the job has ended, to show its final record.
(function () {
  const line = document.getElementById("job-live");
  if (!line) return;
  const FINISHED = ["completed", "failed", "cancelled"];
  const status = document.querySelector(".field-status .readonly");
  const written = document.querySelector(".field-written .readonly");
  let delay = 1000;


  function show(update) {
    if (FINISHED.includes(update.status)) {
      window.location.reload();
      return;
    }
    if (status) status.textContent = update.status.charAt(0).toUpperCase() + update.status.slice(1);
    const bytes = update.progress && update.progress.bytes_written;
    if (written && bytes) written.textContent = window.OpsdeckFormat.fileSize(bytes);
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + line.dataset.socketPath);
    socket.onopen = function () {
      line.textContent = "Live: status and bytes written update as the worker goes.";
      delay = 1000;
    };
    socket.onmessage = function (message) {
      const update = JSON.parse(message.data);
      if (update.type === "job.update") show(update);
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4404) {
        line.textContent = "Live updates stopped: reload the page.";
        return;
      }
      line.textContent = "Live updates interrupted; reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
