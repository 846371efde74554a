"""Notifications in the admin, for administrators only: email routes, events and their deliveries
(email_admin.py); webhook endpoints and their delivery log (webhook_admin.py)."""

from . import email_admin, webhook_admin  # noqa: F401 (each registers its admin classes)
