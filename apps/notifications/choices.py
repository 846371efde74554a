from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


# Deliveries the sender still owes an attempt.
OPEN_DELIVERY_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
