"""Celery tasks of notifications: doors into the channels' services."""

from celery import shared_task
from django.conf import settings

from .email import DeliveryRetry, email_delivery_send


@shared_task(bind=True, name="notifications.email_deliver", acks_late=True, reject_on_worker_lost=True)
def email_deliver(task, delivery_id: int) -> str:
    """Send one email delivery; tried again later while the mail server is down (the service counts the tries and
    fails the delivery after NOTIFICATION_EMAIL_ATTEMPTS); a delivery that is gone or done is skipped."""
    try:
        return email_delivery_send(delivery_id=delivery_id)
    except DeliveryRetry as retry:
        raise task.retry(countdown=retry.countdown, max_retries=settings.NOTIFICATION_EMAIL_ATTEMPTS) from None
