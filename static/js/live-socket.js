// Live pages' websocket: a banner while it is down, reconnects with back-off, and the ordering of job updates.
// Used by the quantum dashboard and job page and the registry's model page (README, "Live job updates").
window.opsdeckLive = (function () {
  "use strict";

  const FIRST_RETRY_MS = 1000;
  const MAX_RETRY_MS = 10000;
  // Close codes after which reconnecting cannot help (README, "Live job updates").
  const FINAL_CLOSE_CODES = { 4401: "your session has ended; reload the page to sign in again", 4404: "this job is no longer visible to you" };

  // Opens a websocket to `path`, shows the banner while it is down and reconnects with exponential back-off.
  // handlers.open(isReconnect) runs on every connect; handlers.message(data) for every JSON message.
  function liveSocket(path, handlers) {
    const banner = document.getElementById("live-banner");
    const bannerText = banner.textContent;
    let retryMs = FIRST_RETRY_MS;
    let connectedBefore = false;

    function connect() {
      const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + window.location.host + path);
      socket.addEventListener("open", function () {
        banner.hidden = true;
        retryMs = FIRST_RETRY_MS;
        handlers.open(connectedBefore);
        connectedBefore = true;
      });
      socket.addEventListener("message", function (event) {
        handlers.message(JSON.parse(event.data));
      });
      socket.addEventListener("close", function (event) {
        banner.hidden = false;
        if (FINAL_CLOSE_CODES[event.code]) {
          banner.textContent = "Live updates stopped: " + FINAL_CLOSE_CODES[event.code] + ".";
          return;
        }
        banner.textContent = bannerText;
        // Jitter keeps many open pages from reconnecting in step after a server restart.
        window.setTimeout(connect, retryMs * (0.75 + Math.random() / 4));
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      });
    }
    connect();
  }

  // Microseconds since the epoch of the server's ISO timestamps: two changes of one job can share a millisecond.
  function micros(iso) {
    const fraction = /\.(\d+)/.exec(iso);
    return Math.floor(Date.parse(iso) / 1000) * 1e6 + Number(fraction ? (fraction[1] + "00000").slice(0, 6) : 0);
  }

  function isNewer(message, updatedAt) {
    return !updatedAt || !message.updated_at || micros(message.updated_at) >= micros(updatedAt);
  }

  return { liveSocket: liveSocket, isNewer: isNewer };
})();
