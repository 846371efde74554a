"""Fixtures the notification tests borrow from the apps that produce the events."""

from ..backups.conftest import stored_backup  # noqa: F401 (a fixture)
