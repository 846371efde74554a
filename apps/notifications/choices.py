from django.db import models


class EmailDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DeliveryReason(models.TextChoices):
    """Why an address is told (the email's footer says so)."""

    CHOSEN = "chosen", "The user turned it on"
    DEFAULT = "default", "On by default for the user's role"
    ROUTE = "route", "An administrator routed the event to the address"
