"""The email channel: who is told of an event by email, one delivery row per address, and sending each one.

Recipients are the users the event may reach (``preferences.users_to_tell``) and the addresses of the active
organisation routes for the event. Each address gets one delivery row, sent by the task ``notifications.email_deliver``
once the producer's transaction commits; the task retries while the mail server is down or refuses, with a growing
wait, and keeps the last error of a delivery that failed for good.
"""

from __future__ import annotations

import re
import smtplib
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.audit.services import event_record
from apps.core.errors import ApplicationError
from apps.core.events import EVENT_TYPES, EventType
from apps.core.formatting import EMPTY, date_time_text, number
from apps.core.mail import MAIL_RETRY_ERRORS, email_message, portal_link

from .channels import Audience, Channel
from .choices import DeliveryReason, EmailDeliveryStatus
from .models import EmailDelivery, EmailRoute, Event, NotificationPreference
from .preferences import user_may_be_told, users_to_tell

# An organisation route names at most this many addresses (a list, not a mailing list).
ROUTE_MAX_ADDRESSES = 20
# Fields of an event's data shown in its email, and characters per value: a summary, not a dump.
EMAIL_MAX_FIELDS = 12
EMAIL_MAX_VALUE_CHARS = 200
# Keys of an event's data that are not shown as fields (the link is built from "path").
HIDDEN_DATA_KEYS = frozenset({"path"})


class EmailRouteError(ApplicationError):
    code = "email_route"


# --- The channel


def _routes(event_type: EventType):
    return EmailRoute.objects.filter(event=event_type.name, active=True)


def email_wants(event_type: EventType, user) -> bool:
    """Whether anyone is told of the event by email: one query for the users, one for the routes (only if needed)."""
    return users_to_tell(event_type, user).exists() or _routes(event_type).exists()


def email_route(event: Event, event_type: EventType) -> int:
    """Create one pending delivery per address (users first, then routes, each address once) and send each after
    the transaction commits; returns how many."""
    from .tasks import email_deliver  # the tasks module imports this one

    users = list(users_to_tell(event_type, event.user).order_by("pk"))
    chosen = set(
        NotificationPreference.objects.filter(event=event.name, email=True, user__in=users).values_list(
            "user_id", flat=True
        )
    )
    deliveries: dict[str, EmailDelivery] = {}
    for user in users:
        address = user.email.strip().lower()
        reason = DeliveryReason.CHOSEN if user.pk in chosen else DeliveryReason.DEFAULT
        deliveries.setdefault(address, EmailDelivery(event=event, address=address, reason=reason, user=user))
    for route in _routes(event_type).order_by("pk"):
        for address in route.addresses:
            address = address.strip().lower()
            deliveries.setdefault(
                address, EmailDelivery(event=event, address=address, reason=DeliveryReason.ROUTE, route=route)
            )
    created = EmailDelivery.objects.bulk_create(deliveries.values())
    for delivery in created:
        transaction.on_commit(lambda pk=delivery.pk: email_deliver.delay(pk))
    return len(created)


def email_audience(event_type: EventType) -> Audience:
    """Anyone, when routes take the event or users get it unless they opt out; else those who opted in."""
    if event_type.email_by_default or _routes(event_type).exists():
        return Audience(anyone=True)
    chosen = NotificationPreference.objects.filter(event=event_type.name, email=True).values_list("user_id", flat=True)
    return Audience(user_ids=frozenset(chosen))


EMAIL_CHANNEL = Channel(name="email", wants=email_wants, route=email_route, audience=email_audience)


# --- Rendering


ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _label(key: str) -> str:
    """ "backup_id" → "Backup ID", "ip" → "IP", "window_days" → "Window days"."""
    words = key.replace("_", " ").replace(".", " ").split()
    words = [word.upper() if word in ("id", "ip") else word for word in words]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _value(value, *, identifier: bool = False) -> str:
    """A value as the portal writes it: counts with thousands separators (not ids), date-times as "7 Dec 2026,
    03:00 UTC", lists joined; long text cut short."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return EMPTY
    if isinstance(value, int | float) and not identifier:
        text = number(value)
    elif isinstance(value, str) and ISO_DATETIME.match(value):
        try:
            text = date_time_text(datetime.fromisoformat(value))
        except ValueError:
            text = value
    elif isinstance(value, list | tuple):
        text = ", ".join(_value(item) for item in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{_label(str(key))}: {_value(item)}" for key, item in value.items())
    else:
        text = str(value)
    return text if len(text) <= EMAIL_MAX_VALUE_CHARS else f"{text[: EMAIL_MAX_VALUE_CHARS - 1]}…"


def notification_fields(data: dict) -> list[tuple[str, str]]:
    """An event's data as labelled fields for the email (at most ``EMAIL_MAX_FIELDS``)."""
    shown = [(key, value) for key, value in data.items() if key not in HIDDEN_DATA_KEYS]
    return [
        (_label(str(key)), _value(value, identifier=str(key) == "id" or str(key).endswith("_id")))
        for key, value in shown[:EMAIL_MAX_FIELDS]
    ]


def notification_context(delivery: EmailDelivery) -> dict:
    """What ``templates/email/notification.*`` render for one delivery."""
    event = delivery.event
    event_type = EVENT_TYPES[event.name]
    path = event.data.get("path") if isinstance(event.data, dict) else None
    return {
        "event": event,
        "event_type": event_type,
        # "One of your jobs failed" would mislead an address an administrator routed the event to.
        "describe": not (event_type.about_own and delivery.reason == DeliveryReason.ROUTE),
        "fields": notification_fields(event.data if isinstance(event.data, dict) else {}),
        "link": portal_link(path) if isinstance(path, str) and path.startswith("/") else "",
        "reason": delivery.reason,
        "preferences_link": portal_link("/account/notifications/"),
        "account_link": portal_link("/account/"),
        "routes_link": portal_link("/admin/notifications/emailroute/"),
    }


# --- Sending


class DeliveryRetry(Exception):
    """The mail server failed a delivery that has tries left: the task tries again after ``countdown`` seconds."""

    def __init__(self, error: BaseException, countdown: float):
        super().__init__(str(error))
        self.countdown = countdown


def retry_countdown(attempts: int) -> float:
    """Seconds before try ``attempts + 1``: the configured wait, doubled after each failed try."""
    return settings.NOTIFICATION_EMAIL_RETRY_SECONDS * 2 ** max(attempts - 1, 0)


def email_delivery_send(*, delivery_id: int) -> str:
    """Try to send one delivery; returns its status afterwards ("sent", "failed", or "gone").

    A delivery already sent or failed is left alone (a task run twice sends once); a user who no longer may be told
    (deactivated, or without the role now) is not sent to. A mail-server error with tries left raises
    ``DeliveryRetry`` after recording the attempt; the last try, or any other error, fails the delivery for good.
    """
    with transaction.atomic():
        delivery = (
            EmailDelivery.objects.select_for_update(of=("self",))
            .select_related("event", "user")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "gone"
        if delivery.status != EmailDeliveryStatus.PENDING:
            return delivery.status
        if delivery.user_id and not user_may_be_told(delivery.user, EVENT_TYPES[delivery.event.name]):
            return _fail(delivery, "Not sent: the user no longer may be told of this event.")
        delivery.attempts += 1
        try:
            email_message(name="notification", to=[delivery.address], context=notification_context(delivery)).send(
                fail_silently=False
            )
        except MAIL_RETRY_ERRORS as error:
            message = f"{type(error).__name__}: {error}"
            if _address_refused(error) or delivery.attempts >= settings.NOTIFICATION_EMAIL_ATTEMPTS:
                return _fail(delivery, message)
            delivery.last_error = message
            delivery.save(update_fields=["attempts", "last_error"])
            retry = DeliveryRetry(error, retry_countdown(delivery.attempts))
        except Exception as error:  # a template or address the mail library rejects: trying again will not help
            return _fail(delivery, f"{type(error).__name__}: {error}")
        else:
            delivery.status, delivery.sent_at = EmailDeliveryStatus.SENT, timezone.now()
            delivery.save(update_fields=["attempts", "status", "sent_at"])
            return delivery.status
    raise retry


def _address_refused(error: BaseException) -> bool:
    """The mail server refused the address for good (5xx): asking again sends nothing."""
    return isinstance(error, smtplib.SMTPRecipientsRefused) and all(
        code >= 500 for code, _ in error.recipients.values()
    )


def _fail(delivery: EmailDelivery, error: str) -> str:
    delivery.status, delivery.last_error = EmailDeliveryStatus.FAILED, error
    delivery.save(update_fields=["attempts", "status", "last_error"])
    return delivery.status


def email_deliveries_resend(*, delivery_ids, by) -> int:
    """Send failed deliveries again (admin action "Send again"): back to pending with fresh tries; audited.

    Returns how many were queued; deliveries not failed are left as they are.
    """
    from .tasks import email_deliver

    with transaction.atomic():
        deliveries = list(
            EmailDelivery.objects.select_for_update()
            .filter(pk__in=list(delivery_ids), status=EmailDeliveryStatus.FAILED)
            .order_by("pk")
        )
        for delivery in deliveries:
            delivery.status, delivery.attempts = EmailDeliveryStatus.PENDING, 0
            delivery.save(update_fields=["status", "attempts"])
            event_record(
                action="notifications.email_delivery.resent",
                actor=by,
                obj=delivery,
                changes={"address": delivery.address, "event": delivery.event_id, "last_error": delivery.last_error},
            )
            transaction.on_commit(lambda pk=delivery.pk: email_deliver.delay(pk))
    return len(deliveries)


# --- Organisation routes


def route_addresses_clean(value) -> list[str]:
    """Addresses from a list or text (one per line, or separated by commas or spaces): valid, each once, at most
    ``ROUTE_MAX_ADDRESSES``; raises ``EmailRouteError`` naming the first bad one or the limit."""
    if isinstance(value, str):
        value = value.replace(",", " ").replace(";", " ").split()
    if not isinstance(value, list | tuple):
        raise EmailRouteError("Addresses must be a list of email addresses.", field="addresses")
    addresses: list[str] = []
    for item in value:
        address = str(item).strip().lower()
        try:
            validate_email(address)
        except ValidationError:
            raise EmailRouteError(f"{str(item)[:100]!r} is not an email address.", field="addresses") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EmailRouteError("Name at least one email address.", field="addresses")
    if len(addresses) > ROUTE_MAX_ADDRESSES:
        raise EmailRouteError(
            f"A route names at most {ROUTE_MAX_ADDRESSES} addresses; this one names {len(addresses)}. "
            "Use a mailing list's address for more people.",
            field="addresses",
        )
    return addresses
