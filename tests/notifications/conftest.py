"""Fixtures of the notification tests, and those they borrow from the apps that produce the events."""

from ..backups.conftest import stored_backup  # noqa: F401 (a fixture)
from .webhook_receiver import webhook_receiver  # noqa: F401 (a fixture: a real HTTP server receiving webhooks)
