"""A real HTTP server on localhost that answers from a script of responses, for the client's retry tests."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """Answers each request with the next (status, headers, body) of ``answers``; the last one repeats.

    ``requests`` records (method, path, monotonic time, Authorization header) of every request received.
    """

    def __init__(self, answers: list[tuple[int, dict[str, str], dict]]):
        self.answers = list(answers)
        self.requests: list[tuple[str, str, float, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, time.monotonic(), self.headers["Authorization"]))
                index = min(len(server.requests), len(server.answers)) - 1
                status, headers, body = server.answers[index]
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        times = [received for _, _, received, _ in self.requests]
        return [later - earlier for earlier, later in itertools.pairwise(times)]
