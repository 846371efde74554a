from django.db import models


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# Deliveries the sender still owes an attempt.
OPEN_DELIVERY_STATUSES = (WebhookDeliveryStatus.PENDING, WebhookDeliveryStatus.RETRYING)


class EmailDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DeliveryReason(models.TextChoices):
    """Why an address is told (the email's footer says so)."""

    CHOSEN = "chosen", "User turned it on"
    DEFAULT = "default", "Role's default"
    ROUTE = "route", "Email route"
