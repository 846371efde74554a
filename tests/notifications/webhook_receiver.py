"""A real HTTP server on 127.0.0.1 that receives webhooks: it records each request and answers as told."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """``answer(500, 302)`` queues the status of the next requests; after them it answers ``default``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[int] = deque()
        self.default = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
                status = receiver.answers.popleft() if receiver.answers else receiver.default
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/moved-here")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/opsdeck"

    def answer(self, *statuses: int) -> None:
        self.answers.extend(statuses)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"Expected {count} webhook request(s) within {timeout} s, got {len(self.requests)}.")
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture
def webhook_receiver(settings) -> Iterator[WebhookReceiver]:
    """The receiver, with private addresses and plain http allowed for webhooks (it is on 127.0.0.1)."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_ALLOW_HTTP = True
    receiver = WebhookReceiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def readme_verification_snippet() -> dict:
    """The README's signature-checking snippet (the first Python block under "### Webhooks"), executed."""
    text = README.read_text()
    section = text[text.index("### Webhooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md (webhook verification snippet)", "exec"), namespace)  # noqa: S102
    return namespace
