"""The live job stream (``/ws/jobs/``): ``job.update`` messages as the portal publishes them.

The token goes in the handshake's ``Authorization: Bearer`` header, never in the address (addresses end up in
logs). The portal checks the ``Origin`` against its allowed hosts, so the portal's own origin is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from .errors import StreamRefused, WaitTimedOut

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

# Close codes the portal uses (its README, "Live job updates").
CLOSE_REASONS = {
    4401: "the token no longer lets the user in (expired, revoked, suspended or account deactivated)",
    4403: "the user's roles changed: reconnect",
    4404: "the job does not exist or is not the user's to see",
}


def _websocket_url(base_url: str, path: str) -> str:
    parts = urlsplit(urljoin(base_url, path.lstrip("/")))
    return parts._replace(scheme="wss" if parts.scheme == "https" else "ws").geturl()


class JobStream:
    """A connection to a job stream; use as a context manager and iterate ``messages()``.

    Snapshots (``jobs.snapshot``) are unpacked: every item yielded is one job's ``job.update`` (or another
    update the stream carries, such as ``version.update``), oldest message first.
    """

    def __init__(self, base_url: str, path: str, token: str, *, open_timeout: float = 10.0) -> None:
        self.url = _websocket_url(base_url, path)
        parts = urlsplit(base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.token = token
        self.open_timeout = open_timeout
        self._connection: ClientConnection | None = None

    def __enter__(self) -> JobStream:
        try:
            self._connection = connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                origin=Origin(self.origin),
                open_timeout=self.open_timeout,
                user_agent_header="opsdeck-client/0.1",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise StreamRefused(
                f"The portal refused the live stream {urlsplit(self.url).path} (HTTP {status}): a bad, expired or "
                "revoked token, or a job that does not exist or is not yours to see."
            ) from None
        except InvalidHandshake as exc:
            raise StreamRefused(f"The live stream {self.url} could not be opened: {exc}.") from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._connection is not None:
            self._connection.close()

    def messages(self, *, deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """Each update until the portal closes the stream; WaitTimedOut once ``deadline`` (monotonic) passes,
        StreamRefused when the portal closes it with one of its own codes."""
        if self._connection is None:
            raise RuntimeError("Open the stream with `with` before reading it.")
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                raw = self._connection.recv(timeout=timeout)
            except TimeoutError:
                raise WaitTimedOut(f"No end of the stream {urlsplit(self.url).path} before the deadline.") from None
            except ConnectionClosedOK:
                return
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code in CLOSE_REASONS:
                    reason = f"The portal closed the stream ({code}): {CLOSE_REASONS[code]}."
                    raise StreamRefused(reason, code=code) from None
                raise
            message = json.loads(raw)
            if message.get("type") == "jobs.snapshot":
                # Newest first in the snapshot: oldest first here, like the updates that follow.
                yield from reversed(message.get("jobs", []))
            else:
                yield message
