// Live job updates for the portal's pages (README, "Live job updates"): a websocket that reconnects with back-off
// and shows the page's #live-banner while it is down, and the rules for applying a job.update. Pages load this
// before their own script and use window.OpsdeckLive.
window.OpsdeckLive = (function () {
  "use strict";

  const FIRST_RETRY_MS = 1000;
  const MAX_RETRY_MS = 10000;
  // Close codes after which reconnecting cannot help (README, "Live job updates").
  const FINAL_CLOSE_CODES = { 4401: "your session has ended; reload the page to sign in again", 4404: "this job is no longer visible to you" };

  // Opens a websocket to `path`, shows the page's #live-banner while it is down (handlers.banner: another element,
  // or null for none) and reconnects with exponential back-off. handlers.open(isReconnect) runs on every connect;
  // handlers.message(data) for every JSON message; handlers.close(finalReason), if given, whenever it drops, with
  // the reason reconnecting cannot help, or null when it will reconnect.
  function liveSocket(path, handlers) {
    const banner = handlers.banner === undefined ? document.getElementById("live-banner") : handlers.banner;
    const bannerText = banner ? banner.textContent : "";
    const closed = handlers.close || function () {};
    let retryMs = FIRST_RETRY_MS;
    let connectedBefore = false;

    function connect() {
      const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + window.location.host + path);
      socket.addEventListener("open", function () {
        if (banner) banner.hidden = true;
        retryMs = FIRST_RETRY_MS;
        handlers.open(connectedBefore);
        connectedBefore = true;
      });
      socket.addEventListener("message", function (event) {
        handlers.message(JSON.parse(event.data));
      });
      socket.addEventListener("close", function (event) {
        const finalReason = FINAL_CLOSE_CODES[event.code] || null;
        closed(finalReason);
        if (banner) {
          banner.hidden = false;
          banner.textContent = finalReason ? "Live updates stopped: " + finalReason + "." : bannerText;
        }
        if (finalReason) return;
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

  // Messages published by different processes can overtake each other: keep one only if it is not older.
  function isNewer(message, updatedAt) {
    return !updatedAt || !message.updated_at || micros(message.updated_at) >= micros(updatedAt);
  }

  function setBadge(badge, status) {
    badge.textContent = status;
    badge.className = "badge badge-" + status;
  }

  return { liveSocket: liveSocket, isNewer: isNewer, setBadge: setBadge };
})();
