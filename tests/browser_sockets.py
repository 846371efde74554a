"""Watching a page's websockets from a browser test: a script added before the page's own records every socket it
opens, and a page function says whether the newest one is open."""

SOCKET_RECORDER = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    window.__sockets.push(this);
  }
};
"""
SOCKET_OPEN = "() => window.__sockets.length > 0 && window.__sockets.at(-1).readyState === 1"
