"""Webhooks: endpoints administrators define, and the signed, retried deliveries of events to them.

Each delivery is one JSON POST of ``{"id", "event", "created_at", "data"}`` signed like Stripe's
(``Opsdeck-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``). The first attempt is a task queued
when the event's transaction commits; a failed attempt sets ``next_attempt_at`` (exponential backoff, for up to a
day) and the beat sweep sends what is due, so that no retry waits in the broker and a lost task message only
delays a delivery by a minute. Attempts are claimed with a lease (``next_attempt_at`` moved past the request's
time-out) in a short transaction, so the HTTP request never holds a database lock and an attempt cut short by a
dying worker is picked up again by the sweep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError
from requests.adapters import HTTPAdapter

from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.events import EVENT_TYPES, EventType
from apps.core.mail import email_send, portal_link

from .addresses import GUARDED_POOL_CLASSES, WebhookUrlRefused, webhook_url_check
from .channels import Audience
from .choices import OPEN_DELIVERY_STATUSES, WebhookDeliveryStatus
from .models import Event, WebhookDelivery, WebhookEndpoint
from .webhook_secrets import WebhookSecretUnreadable, secret_new, secret_open, secret_seal

logger = logging.getLogger(__name__)

CHANNEL_NAME = "webhook"
USER_AGENT = "Opsdeck-Webhooks/1"
FIRST_RETRY = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=6)
RETRY_WINDOW = timedelta(hours=24)
# An attempt's claim outlives its request (the time-out) by this much before the sweep may take it again.
LEASE_MARGIN = timedelta(seconds=60)
# The sweep runs every minute: it stops claiming after this many deliveries or seconds, the rest wait a minute.
SWEEP_BATCH = 10
SWEEP_MAX_DELIVERIES = 100
SWEEP_SECONDS = 45
ERROR_LENGTH = 300


class WebhookError(Exception):
    """Something an administrator asked for cannot be done; the message says why."""


# --- Payload and signature


def payload_body(event: Event) -> bytes:
    """The exact bytes POSTed (and signed): the same for every attempt of every delivery of ``event``."""
    payload = {"id": str(event.pk), "event": event.name, "created_at": event.created_at, "data": event.data}
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- Endpoints


def webhook_events_clean(events) -> list[str]:
    """The event names, de-duplicated in catalogue order; unknown names or none at all refused."""
    chosen = set(events or ())
    unknown = sorted(chosen - EVENT_TYPES.keys())
    if unknown:
        raise WebhookError(f"Unknown event(s) {', '.join(unknown)}; the events are {', '.join(EVENT_TYPES)}.")
    if not chosen:
        raise WebhookError("Choose at least one event to send to the endpoint.")
    return [name for name in EVENT_TYPES if name in chosen]


def webhook_url_clean(url: str) -> str:
    url = (url or "").strip()
    try:
        webhook_url_check(url)
    except WebhookUrlRefused as exc:
        raise WebhookError(str(exc)) from None
    return url


def webhook_endpoint_create(
    *, name: str, url: str, events: list[str], owner, active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint owned by ``owner`` with a new signing secret; returns it and the secret (shown once)."""
    secret = secret_new()
    endpoint = WebhookEndpoint.objects.create(
        name=name.strip()[:100] or urlsplit(url).hostname or "Webhook",
        url=webhook_url_clean(url),
        events=webhook_events_clean(events),
        active=active,
        owner=owner,
        secret_encrypted=secret_seal(secret),
    )
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Save an edited endpoint (its changes are audited as notifications.webhook_endpoint.changed).

    Switching it on again starts its failure count afresh; switching it off closes its open deliveries.
    """
    endpoint.url = webhook_url_clean(endpoint.url)
    endpoint.events = webhook_events_clean(endpoint.events)
    stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).values("active").first()
    was_active = stored["active"] if stored else endpoint.active
    # Only what an administrator edits: the failure count is the attempts' to write (with update(), concurrently).
    fields = ["name", "url", "events", "active"]
    with transaction.atomic():
        if endpoint.active and not was_active:
            endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
            fields += ["consecutive_failures", "disabled_at", "disabled_reason"]
        endpoint.save(update_fields=fields)
        if was_active and not endpoint.active:
            _open_deliveries_close(endpoint, "The endpoint was switched off before this delivery succeeded.")
    return endpoint


def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor) -> str:
    """Give the endpoint a new signing secret at once (the old one stops working); returns it, to show once."""
    secret = secret_new()
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted=secret_seal(secret))
        event_record(action="notifications.webhook_endpoint.secret_rotated", actor=actor, obj=endpoint)
    return secret


# --- The channel: which events go to webhooks, and their deliveries


def webhooks_want(event_type: EventType, user) -> bool:
    """Whether an active endpoint subscribes to the event: one query over the (few) active endpoints' lists."""
    return any(
        event_type.name in events
        for events in WebhookEndpoint.objects.filter(active=True).values_list("events", flat=True)
    )


def webhooks_audience(event_type: EventType) -> Audience:
    """Endpoints take an event whoever it is about."""
    return Audience(anyone=webhooks_want(event_type, None))


def webhooks_route(event: Event, event_type: EventType) -> int:
    """One delivery per subscribed active endpoint, sent once the producer's transaction commits."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(active=True).only("pk", "events")
        if event.name in endpoint.events
    ]
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now) for endpoint in endpoints
    )
    _attempts_enqueue([delivery.pk for delivery in deliveries])
    return len(deliveries)


def _attempts_enqueue(delivery_ids: list) -> None:
    """Queue the first attempts after the commit. A refusing broker loses nothing: the deliveries are due, and
    the sweep sends them within a minute."""
    from .tasks import webhook_attempt

    def send() -> None:
        for delivery_id in delivery_ids:
            try:
                webhook_attempt.delay(str(delivery_id))
            except OperationalError as exc:
                logger.warning("The task broker refused webhook deliveries (the sweep sends them): %s", exc)
                return

    if delivery_ids:
        transaction.on_commit(send)


def webhook_redeliver(*, delivery: WebhookDelivery, actor) -> WebhookDelivery:
    """Send a delivery's event to its endpoint again, as a new delivery (its own id, attempts and retries)."""
    endpoint = delivery.endpoint
    if not endpoint.active:
        raise WebhookError(f"{endpoint} is switched off: switch it on before redelivering to it.")
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            event_id=delivery.event_id, endpoint=endpoint, redelivery_of=delivery, next_attempt_at=timezone.now()
        )
        event_record(
            action="notifications.webhook_delivery.redelivered",
            actor=actor,
            obj=endpoint,
            changes={"delivery": str(delivery.pk), "redelivery": str(again.pk), "event": delivery.event.name},
        )
        _attempts_enqueue([again.pk])
    return again


# --- Attempts


@dataclass(frozen=True)
class AttemptOutcome:
    succeeded: bool
    response_code: int | None = None
    latency_ms: int | None = None
    error: str = ""


class _GuardedAdapter(HTTPAdapter):
    """Connections that refuse non-public peers (apps/notifications/addresses.py), checked after connecting."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = GUARDED_POOL_CLASSES


def _post(url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    with requests.Session() as session:
        # No proxy or .netrc from the environment: the request goes where the check said, with nothing added.
        session.trust_env = False
        adapter = _GuardedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        response = session.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            stream=True,  # the answer's body is never read: its status says it all
        )
        response.close()
        return response


def _send(delivery: WebhookDelivery) -> AttemptOutcome:
    endpoint, event = delivery.endpoint, delivery.event
    try:
        secret = secret_open(endpoint.secret_encrypted)
        webhook_url_check(endpoint.url)
    except (WebhookSecretUnreadable, WebhookUrlRefused) as exc:
        return AttemptOutcome(False, error=str(exc))
    body = payload_body(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Opsdeck-Event": event.name,
        "Opsdeck-Delivery": str(delivery.pk),
        "Opsdeck-Signature": signature_header(secret, body, int(time.time())),
    }
    host = urlsplit(endpoint.url).hostname
    started = time.monotonic()
    try:
        response = _post(endpoint.url, body, headers)
    except WebhookUrlRefused as exc:
        return AttemptOutcome(False, error=str(exc))
    except requests.Timeout:
        error = f"No answer from {host} within {settings.WEBHOOK_TIMEOUT_SECONDS} s (WEBHOOK_TIMEOUT_SECONDS)."
        return AttemptOutcome(False, latency_ms=_elapsed_ms(started), error=error)
    except requests.exceptions.SSLError:
        return AttemptOutcome(False, latency_ms=_elapsed_ms(started), error=f"TLS with {host} failed.")
    except requests.ConnectionError:
        return AttemptOutcome(False, latency_ms=_elapsed_ms(started), error=f"Could not connect to {host}.")
    except requests.RequestException as exc:
        # Exception texts may quote the URL (with any token in it): only the kind of failure is kept.
        error = f"The request failed ({type(exc).__name__})."
        return AttemptOutcome(False, latency_ms=_elapsed_ms(started), error=error)
    latency, code = _elapsed_ms(started), response.status_code
    if 200 <= code < 300:
        return AttemptOutcome(True, code, latency)
    if 300 <= code < 400:
        error = f"Answered {code}, a redirect, which is not followed: point the endpoint at the final URL."
    else:
        error = f"Answered {code}; only a 2xx status counts as received."
    return AttemptOutcome(False, code, latency, error)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _claim(queryset, *, limit: int) -> list[WebhookDelivery]:
    """Take up to ``limit`` due deliveries for this process: the attempt is counted and the lease set at once."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS) * 2 + LEASE_MARGIN
    with transaction.atomic():
        deliveries = list(
            queryset.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=OPEN_DELIVERY_STATUSES, next_attempt_at__lte=now, endpoint__active=True)
            .order_by("next_attempt_at")[:limit]
        )
        for delivery in deliveries:
            delivery.attempts += 1
            delivery.first_attempt_at = delivery.first_attempt_at or now
            delivery.last_attempt_at = now
            delivery.next_attempt_at = lease_until
            delivery.save(update_fields=["attempts", "first_attempt_at", "last_attempt_at", "next_attempt_at"])
    return deliveries


def next_attempt_time(*, attempts: int, first_attempt_at: datetime, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts: 30 s doubling up to 6 h, plus a little jitter, the
    last try exactly a day after the first; None once that day is over."""
    deadline = first_attempt_at + RETRY_WINDOW
    if now >= deadline:
        return None
    delay = min(FIRST_RETRY * 2 ** (attempts - 1), MAX_BACKOFF)
    # Jitter spreads the retries of many deliveries that failed together (an endpoint down) over a few seconds.
    delay += timedelta(seconds=random.uniform(0, min(delay.total_seconds() / 10, 60)))  # noqa: S311
    return min(now + delay, deadline)


def _record(delivery: WebhookDelivery, outcome: AttemptOutcome) -> None:
    now = timezone.now()
    delivery.response_code, delivery.latency_ms = outcome.response_code, outcome.latency_ms
    delivery.error = outcome.error[:ERROR_LENGTH]
    if outcome.succeeded:
        delivery.status, delivery.next_attempt_at = WebhookDeliveryStatus.SUCCEEDED, None
    else:
        delivery.next_attempt_at = next_attempt_time(
            attempts=delivery.attempts, first_attempt_at=delivery.first_attempt_at, now=now
        )
        delivery.status = WebhookDeliveryStatus.RETRYING if delivery.next_attempt_at else WebhookDeliveryStatus.FAILED
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    with transaction.atomic():
        delivery.save(update_fields=["status", "next_attempt_at", "response_code", "latency_ms", "error"])
        if outcome.succeeded:
            endpoints.exclude(consecutive_failures=0).update(consecutive_failures=0)
            return
        endpoints.update(consecutive_failures=F("consecutive_failures") + 1)
        failures = endpoints.values_list("consecutive_failures", flat=True).first() or 0
        if failures >= settings.WEBHOOK_MAX_FAILURES:
            _endpoint_disable(delivery.endpoint, failures=failures, last_error=delivery.error)


def _attempt(delivery: WebhookDelivery) -> bool:
    outcome = _send(delivery)
    _record(delivery, outcome)
    return outcome.succeeded


def webhook_delivery_attempt(*, delivery_id) -> str:
    """Make the delivery's next attempt if it is due and nobody else is making it (the first attempt's task)."""
    claimed = _claim(WebhookDelivery.objects.filter(pk=delivery_id), limit=1)
    if not claimed:
        return "Not due, already taken, or gone."
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=claimed[0].pk)
    return "Delivered." if _attempt(delivery) else f"Failed: {delivery.error}"


def webhook_deliveries_send_due() -> str:
    """Send the webhook deliveries whose next attempt is due (first attempts whose task was lost, and retries)."""
    started, attempted, succeeded = time.monotonic(), 0, 0
    while attempted < SWEEP_MAX_DELIVERIES and time.monotonic() - started < SWEEP_SECONDS:
        claimed = _claim(WebhookDelivery.objects.all(), limit=min(SWEEP_BATCH, SWEEP_MAX_DELIVERIES - attempted))
        if not claimed:
            break
        claimed_ids = [delivery.pk for delivery in claimed]
        for delivery in WebhookDelivery.objects.select_related("endpoint", "event").filter(pk__in=claimed_ids):
            succeeded += _attempt(delivery)
            attempted += 1
    return f"{attempted} webhook deliver{'y' if attempted == 1 else 'ies'} attempted, {succeeded} succeeded."


# --- Switching an endpoint off after too many failures


def _open_deliveries_close(endpoint: WebhookEndpoint, reason: str) -> int:
    return WebhookDelivery.objects.filter(endpoint=endpoint, status__in=OPEN_DELIVERY_STATUSES).update(
        status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, error=reason[:ERROR_LENGTH]
    )


def _endpoint_disable(endpoint: WebhookEndpoint, *, failures: int, last_error: str) -> None:
    """Switch the endpoint off, close its open deliveries, audit it and email its owner (once, after commit)."""
    now = timezone.now()
    reason = f"Switched off after {failures} failed attempts in a row (WEBHOOK_MAX_FAILURES); the last: {last_error}"
    switched = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_at=now, disabled_reason=reason[:ERROR_LENGTH]
    )
    if not switched:
        return
    _open_deliveries_close(endpoint, "The endpoint was switched off after too many failures.")
    event_record(
        action="notifications.webhook_endpoint.disabled",
        obj=endpoint,
        changes={"consecutive_failures": failures, "last_error": last_error},
    )
    from .tasks import webhook_disabled_email

    transaction.on_commit(lambda: webhook_disabled_email.delay(endpoint.pk))


def _admin_emails() -> list[str]:
    from django.contrib.auth import get_user_model

    admins = get_user_model().objects.filter(Q(groups__name=Role.ADMIN) | Q(is_superuser=True), is_active=True)
    return sorted(set(admins.exclude(email="").values_list("email", flat=True)))


def webhook_disabled_email_send(*, endpoint_id: int) -> str:
    """Tell the endpoint's owner (or, without one, the administrators) that it was switched off and why."""
    endpoint = WebhookEndpoint.objects.select_related("owner").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.active:
        return "Nothing to tell: the endpoint is gone or active again."
    owner = endpoint.owner
    recipients = [owner.email] if owner and owner.is_active and owner.email else _admin_emails()
    if not recipients:
        return "Nobody to tell: the owner and the administrators have no email address."
    change = reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
    deliveries = reverse("admin:notifications_webhookdelivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
    email_send(
        name="webhook_disabled",
        to=recipients,
        context={
            "endpoint": endpoint,
            # The host only: a URL's path or query may hold the receiver's own token.
            "host": urlsplit(endpoint.url).hostname,
            "endpoint_link": portal_link(change),
            "deliveries_link": portal_link(deliveries),
            "max_failures": settings.WEBHOOK_MAX_FAILURES,
        },
    )
    return f"Told {', '.join(recipients)}."
