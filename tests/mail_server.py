"""A real SMTP server on 127.0.0.1 for tests that send email, and the messages it received."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from .helpers import free_port


@dataclass
class MailServer:
    """What the server received, each message parsed; ``wait_for`` waits for sending done by a worker."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if address in message["X-Envelope-To"].split(", ")]

    def wait_for(self, count: int = 1, *, to: str | None = None, timeout: float = 60) -> list[EmailMessage]:
        """The messages (to ``to``, if given) once there are at least ``count``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.to(to) if to else list(self.messages)
            if len(received) >= count:
                return received
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Expected {count} email(s){f' to {to}' if to else ''} within {timeout} s, got {len(received)}."
                )
            time.sleep(0.05)


def text_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def smtp_server(settings) -> Iterator[MailServer]:
    """A real SMTP server that the portal's email settings point at for the test (plain SMTP, no auth)."""
    server = MailServer(port=free_port())
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    try:
        yield server
    finally:
        controller.stop()
