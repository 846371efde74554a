// Subscribes to the signed-in user's live events and lists them; reconnects with back-off.
(function () {
  const list = document.getElementById("live-events");
  const state = document.getElementById("live-state");
  if (!list) return;
  let delay = 1000;

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + list.dataset.path);
    socket.onopen = function () {
      state.textContent = "connected";
      state.className = "status status-ok";
      delay = 1000;
    };
    socket.onmessage = function (message) {
      const data = JSON.parse(message.data);
      const item = document.createElement("li");
      item.textContent = new Date().toISOString().slice(11, 19) + " " + data.event + " " + JSON.stringify(data.payload);
      list.prepend(item);
      while (list.children.length > 50) list.lastChild.remove();
    };
    socket.onclose = function () {
      state.textContent = "disconnected, retrying";
      state.className = "status status-down";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
