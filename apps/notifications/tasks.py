"""Celery tasks of notifications: doors into the channels' services (email.py, webhooks.py)."""

from celery import shared_task
from django.conf import settings

from apps.core.mail import MAIL_RETRY_ERRORS
from apps.core.maintenance import maintenance_task

from . import webhooks
from .email import DeliveryRetry, email_delivery_send


@shared_task(bind=True, name="notifications.email_deliver", acks_late=True, reject_on_worker_lost=True)
def email_deliver(task, delivery_id: int) -> str:
    """Send one email delivery; tried again later while the mail server is down (the service counts the tries and
    fails the delivery after NOTIFICATION_EMAIL_ATTEMPTS); a delivery that is gone or done is skipped."""
    try:
        return email_delivery_send(delivery_id=delivery_id)
    except DeliveryRetry as retry:
        raise task.retry(countdown=retry.countdown, max_retries=settings.NOTIFICATION_EMAIL_ATTEMPTS) from None


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
