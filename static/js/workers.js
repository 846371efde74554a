// Workers and queues page: reloads itself every data-refresh-seconds while "Refresh every … s" is ticked, unless
// the user is typing in the window field; the choice is remembered for the session.
(function () {
  "use strict";

  const root = document.getElementById("workers-page");
  const toggle = document.getElementById("auto-refresh");
  if (!root || !toggle) return;
  const seconds = Number(root.dataset.refreshSeconds) || 10;
  const KEY = "opsdeck.workers.autoRefresh";
  if (window.sessionStorage.getItem(KEY) === "off") toggle.checked = false;
  let timer = null;

  function schedule() {
    window.clearTimeout(timer);
    if (!toggle.checked) return;
    timer = window.setTimeout(function () {
      const active = document.activeElement;
      if (active && active.id === "minutes") {
        schedule();
        return;
      }
      window.location.reload();
    }, seconds * 1000);
  }

  toggle.addEventListener("change", function () {
    window.sessionStorage.setItem(KEY, toggle.checked ? "on" : "off");
    schedule();
  });
  schedule();
})();
