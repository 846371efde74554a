// Lists the signed-in user's live events as they arrive over /ws/events/ (static/js/live-socket.js); the
// summary's state says whether the socket is up.
(function () {
  "use strict";

  const list = document.getElementById("live-events");
  const state = document.getElementById("live-state");
  if (!list) return;
  const MAX_ITEMS = 50;

  // "status: running · queue position: 2": the event's details in words, not as JSON.
  function details(payload) {
    return Object.entries(payload || {})
      .map(([name, value]) => name.replace(/_/g, " ") + ": " + (value !== null && typeof value === "object" ? JSON.stringify(value) : value))
      .join(" · ");
  }

  window.OpsdeckLive.liveSocket(list.dataset.path, {
    banner: null, // the page's banner follows its own socket; this one has its state in the summary
    open: function () {
      state.textContent = "connected";
      state.className = "status status-ok";
    },
    message: function (data) {
      const item = document.createElement("li");
      item.append(window.OpsdeckFormat.timeElement(new Date().toISOString()), " ", data.event, " ", details(data.payload));
      list.prepend(item);
      while (list.children.length > MAX_ITEMS) list.lastChild.remove();
    },
    close: function (finalReason) {
      state.textContent = finalReason ? "stopped: " + finalReason : "disconnected, retrying";
      state.className = "status status-down";
    },
  });
})();
