import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.core.events import EVENT_TYPES

from .choices import DeliveryReason, EmailDeliveryStatus

EVENT_CHOICES = [(event.name, event.label) for event in EVENT_TYPES.values()]


class Event(models.Model):
    """One event that was routed to someone: what every delivery of it (email, webhook) sends."""

    # Sent as the payload's "id": receivers de-duplicate on it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=40, choices=EVENT_CHOICES, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    summary = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The user the event is about (the job's owner, the token's holder), if any.",
    )
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name}: {self.summary}" if self.summary else self.name


class NotificationPreference(models.Model):
    """A user's own choice for one event; without one, the event's ``email_by_default`` applies."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    event = models.CharField(max_length=40, choices=EVENT_CHOICES)
    email = models.BooleanField(help_text="Tell this user by email.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="notification_preference_one_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.event} email {'on' if self.email else 'off'}"


class EmailRoute(models.Model):
    """An organisation-wide route set by administrators: an event is also emailed to these addresses."""

    event = models.CharField(max_length=40, choices=EVENT_CHOICES, db_index=True)
    addresses = models.JSONField(default=list, help_text="Email addresses that are told of the event.")
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, help_text="Who the addresses are, why they are told.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event", "pk"]
        verbose_name = "email route"

    def __str__(self) -> str:
        label = EVENT_TYPES[self.event].label if self.event in EVENT_TYPES else self.event
        return f"{label} → {', '.join(self.addresses[:3])}{' …' if len(self.addresses) > 3 else ''}"


class EmailDelivery(models.Model):
    """One email of one event to one address; the task that sends it keeps its status, attempts and last error."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="email_deliveries")
    address = models.EmailField(max_length=254)
    # Why this address is told, for the footer: a user's choice, their role's default, or an organisation route.
    reason = models.CharField(max_length=10, choices=DeliveryReason.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    route = models.ForeignKey(EmailRoute, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    status = models.CharField(
        max_length=10, choices=EmailDeliveryStatus.choices, default=EmailDeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "email delivery"
        verbose_name_plural = "email deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "address"], name="email_delivery_one_per_address"),
        ]

    def __str__(self) -> str:
        return f"{self.event.name} to {self.address}"
