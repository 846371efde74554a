"""Fixtures of the notification tests."""

from .webhook_receiver import webhook_receiver  # noqa: F401 (a fixture: a real HTTP server receiving webhooks)
