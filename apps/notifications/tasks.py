"""Celery tasks of notifications: doors into apps/notifications/webhooks.py."""

from celery import shared_task

from apps.core.mail import MAIL_RETRY_ERRORS
from apps.core.maintenance import maintenance_task

from . import webhooks


@shared_task(name="notifications.webhook_attempt")
def webhook_attempt(delivery_id: str) -> str:
    """A delivery's first attempt, queued when its event commits; retries are the sweep's (never a countdown)."""
    return webhooks.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(
    name="notifications.webhook_disabled_email",
    autoretry_for=MAIL_RETRY_ERRORS,
    retry_backoff=30,
    retry_backoff_max=3600,
    max_retries=8,
)
def webhook_disabled_email(endpoint_id: int) -> str:
    """Email the owner of an endpoint that was switched off after too many failures."""
    return webhooks.webhook_disabled_email_send(endpoint_id=endpoint_id)


webhook_deliveries_send_due = maintenance_task("webhook_deliveries_send_due", webhooks.webhook_deliveries_send_due)
