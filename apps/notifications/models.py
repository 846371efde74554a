import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from apps.core.events import EVENT_TYPES

from .choices import DeliveryReason, EmailDeliveryStatus, WebhookDeliveryStatus

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


class WebhookEndpoint(models.Model):
    """A URL that receives signed JSON POSTs of the events it subscribes to (apps/notifications/webhooks.py)."""

    name = models.CharField(max_length=100)
    url = models.URLField(
        "URL",
        max_length=2000,
        help_text="Where each event is POSTed; https, on a public address (WEBHOOK_ALLOW_HTTP and "
        "WEBHOOK_ALLOW_PRIVATE relax this). Redirects are not followed.",
    )
    # Event names of apps.core.events.EVENT_TYPES.
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(
        default=True, help_text="Only active endpoints are sent events; switched off after too many failures."
    )
    # The signing secret, encrypted with a key derived from SECRET_KEY (apps/notifications/webhook_secrets.py).
    secret_encrypted = models.TextField(editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="webhook_endpoints",
        editable=False,
        help_text="The administrator who created it; emailed when it is switched off.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event sent to one endpoint, over one or more attempts; its id is the Opsdeck-Delivery header."""

    # Receivers may de-duplicate on it: every retry of a delivery carries the same one.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="webhook_deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    # When the sender next tries; empty once the delivery succeeded or failed for good. The sweep reads this index.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    redelivery_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="redeliveries",
        help_text="The delivery an administrator sent again as this one.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event.name} to {self.endpoint}"


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
