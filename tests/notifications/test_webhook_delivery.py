"""Webhook deliveries reach a real HTTP receiver signed as documented, are retried after failures with backoff
from the database (swept, not counted down in the broker), never follow redirects, and switch a failing endpoint
off after WEBHOOK_MAX_FAILURES attempts in a row, emailing its owner."""

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.events import notify
from apps.notifications.choices import WebhookDeliveryStatus
from apps.notifications.models import Event, WebhookDelivery, WebhookEndpoint
from apps.notifications.preferences import preferences_save
from apps.notifications.webhooks import (
    next_attempt_time,
    webhook_deliveries_send_due,
    webhook_delivery_attempt,
    webhook_disabled_email_send,
    webhook_endpoint_create,
    webhook_redeliver,
)

from ..mail_server import html_body, text_body
from .webhook_receiver import readme_verification_snippet

pytestmark = pytest.mark.django_db


def _endpoint(receiver, owner, events=("backup.failed",)):
    return webhook_endpoint_create(name="Pager", url=receiver.url, events=list(events), owner=owner)


def _backup_failed():
    notify("backup.failed", data={"backup_id": 7, "error": "disk full"}, summary="Backup #7 failed")
    return WebhookDelivery.objects.get()


def _make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_delivery_is_a_signed_json_post_with_exact_payload_and_headers(webhook_receiver, admin_user):
    endpoint, secret = _endpoint(webhook_receiver, admin_user)
    delivery = _backup_failed()

    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "Delivered."

    (request,) = webhook_receiver.requests
    event = Event.objects.get()
    assert request.path == "/hooks/opsdeck"
    assert json.loads(request.body) == {
        "id": str(event.pk),
        "event": "backup.failed",
        "created_at": event.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {"backup_id": 7, "error": "disk full"},
    }
    assert list(json.loads(request.body)) == ["id", "event", "created_at", "data"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Opsdeck-Webhooks/1"
    assert request.headers["Opsdeck-Event"] == "backup.failed"
    assert request.headers["Opsdeck-Delivery"] == str(delivery.pk)
    assert "Authorization" not in request.headers
    # The README's own snippet accepts it, and refuses a changed body, another secret or an old timestamp.
    valid = readme_verification_snippet()["opsdeck_signature_valid"]
    signature = request.headers["Opsdeck-Signature"]
    assert valid(secret, request.body, signature)
    assert not valid(secret, request.body.replace(b"disk full", b"disk fine"), signature)
    assert not valid("whsec_other", request.body, signature)
    timestamp = int(signature.split(",")[0].removeprefix("t="))
    assert abs(timestamp - timezone.now().timestamp()) < 60
    assert not valid(secret, request.body, signature, tolerance=-1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (WebhookDeliveryStatus.SUCCEEDED, 1, 200)
    assert delivery.latency_ms is not None
    assert delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_event_no_endpoint_subscribes_to_makes_no_delivery(webhook_receiver, admin_user):
    _endpoint(webhook_receiver, admin_user, events=["backup.stale"])

    notify("backup.failed", data={"backup_id": 7}, summary="Backup #7 failed")

    assert not WebhookDelivery.objects.exists()


def test_failed_attempts_are_retried_by_the_sweep_with_the_same_delivery_id_until_received(
    webhook_receiver, admin_user
):
    _, secret = _endpoint(webhook_receiver, admin_user)
    webhook_receiver.answer(500, 503)
    delivery = _backup_failed()

    webhook_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.attempts) == (WebhookDeliveryStatus.RETRYING, 500, 1)
    assert "500" in delivery.error
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=33)
    # Not yet due: the sweep leaves it alone.
    assert webhook_deliveries_send_due().startswith("0 webhook deliveries attempted")
    assert len(webhook_receiver.requests) == 1

    _make_due(delivery)
    webhook_deliveries_send_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.attempts) == (WebhookDeliveryStatus.RETRYING, 503, 2)
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=60) <= wait <= timedelta(seconds=66)
    assert WebhookEndpoint.objects.get().consecutive_failures == 2

    _make_due(delivery)
    assert webhook_deliveries_send_due() == "1 webhook delivery attempted, 1 succeeded."
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code, delivery.attempts, delivery.error) == (
        WebhookDeliveryStatus.SUCCEEDED,
        200,
        3,
        "",
    )
    assert WebhookEndpoint.objects.get().consecutive_failures == 0
    requests = webhook_receiver.requests
    assert len(requests) == 3
    assert {request.headers["Opsdeck-Delivery"] for request in requests} == {str(delivery.pk)}
    assert {request.body for request in requests} == {requests[0].body}
    valid = readme_verification_snippet()["opsdeck_signature_valid"]
    assert all(valid(secret, request.body, request.headers["Opsdeck-Signature"]) for request in requests)


def test_backoff_doubles_from_30_seconds_to_6_hours_and_stops_a_day_after_the_first_attempt():
    first = timezone.now()
    waits = []
    now = first
    for attempts in range(1, 30):
        following = next_attempt_time(attempts=attempts, first_attempt_at=first, now=now)
        if following is None:
            break
        waits.append(following - now)
        now = following
    assert timedelta(seconds=30) <= waits[0] <= timedelta(seconds=33)
    assert timedelta(seconds=60) <= waits[1] <= timedelta(seconds=66)
    assert max(waits) <= timedelta(hours=6, minutes=1)
    assert timedelta(hours=6) <= sorted(waits)[-2]
    assert now == first + timedelta(hours=24)
    assert next_attempt_time(attempts=40, first_attempt_at=first, now=now) is None


def test_delivery_still_failing_a_day_after_its_first_attempt_fails_for_good(webhook_receiver, admin_user):
    _endpoint(webhook_receiver, admin_user)
    webhook_receiver.default = 500
    delivery = _backup_failed()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        first_attempt_at=timezone.now() - timedelta(hours=24, seconds=1), attempts=12
    )
    _make_due(delivery)

    webhook_deliveries_send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (WebhookDeliveryStatus.FAILED, 13, None)
    webhook_deliveries_send_due()
    assert len(webhook_receiver.requests) == 1


def test_redirect_is_not_followed_and_counts_as_a_failure(webhook_receiver, admin_user):
    _endpoint(webhook_receiver, admin_user)
    webhook_receiver.answer(302)
    delivery = _backup_failed()

    webhook_delivery_attempt(delivery_id=delivery.pk)

    assert [request.path for request in webhook_receiver.requests] == ["/hooks/opsdeck"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_code) == (WebhookDeliveryStatus.RETRYING, 302)
    assert "redirect, which is not followed" in delivery.error
    assert WebhookEndpoint.objects.get().consecutive_failures == 1


def test_unreachable_receiver_is_a_failure_naming_the_host_only(webhook_receiver, admin_user, settings):
    endpoint, _ = _endpoint(webhook_receiver, admin_user)
    port = webhook_receiver.server.server_address[1]
    webhook_receiver.server.shutdown()
    webhook_receiver.server.server_close()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.1:{port}/hook?token=s3cr3t")
    delivery = _backup_failed()

    webhook_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.RETRYING
    assert delivery.response_code is None
    assert delivery.error == "Could not connect to 127.0.0.1."


def test_redeliver_sends_the_same_event_again_as_a_new_audited_delivery(webhook_receiver, admin_user):
    _endpoint(webhook_receiver, admin_user)
    delivery = _backup_failed()
    webhook_delivery_attempt(delivery_id=delivery.pk)

    again = webhook_redeliver(delivery=delivery, actor=admin_user)
    webhook_delivery_attempt(delivery_id=again.pk)

    first, second = webhook_receiver.requests
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    assert second.headers["Opsdeck-Delivery"] == str(again.pk) != first.headers["Opsdeck-Delivery"]
    again.refresh_from_db()
    assert (again.status, again.redelivery_of_id, again.event_id) == (
        WebhookDeliveryStatus.SUCCEEDED,
        delivery.pk,
        delivery.event_id,
    )
    audit = AuditEvent.objects.get(action="notifications.webhook_delivery.redelivered")
    assert audit.actor_username == admin_user.username
    assert str(again.pk) in audit.changes_text


def _wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"Still not true after {timeout} s.")
        time.sleep(0.05)


def test_endpoint_is_switched_off_after_max_failures_in_a_row_and_its_owner_emailed(
    webhook_receiver, admin_user, settings, smtp_server, celery_worker
):
    settings.WEBHOOK_MAX_FAILURES = 3
    admin_user.email = "alice@example.com"
    admin_user.save()
    # Only the email about the endpoint, not the backup failures themselves.
    preferences_save(user=admin_user, choices={"backup.failed": False})
    endpoint, _ = _endpoint(webhook_receiver, admin_user)
    webhook_receiver.default = 500
    with transaction.atomic():
        delivery = _backup_failed()
    # The first attempt is the worker's, once the event committed.
    _wait_until(lambda: WebhookDelivery.objects.get().status != WebhookDeliveryStatus.PENDING)
    for failures in (2, 3):
        assert WebhookEndpoint.objects.get().active
        _make_due(delivery)
        webhook_deliveries_send_due()
        assert WebhookEndpoint.objects.get().consecutive_failures == failures

    endpoint.refresh_from_db()
    assert not endpoint.active
    assert endpoint.disabled_at is not None
    assert "3 failed attempts in a row" in endpoint.disabled_reason
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == (WebhookDeliveryStatus.FAILED, None)
    assert AuditEvent.objects.filter(action="notifications.webhook_endpoint.disabled").count() == 1
    (message,) = smtp_server.wait_for(1, to="alice@example.com")
    assert message["Subject"] == "[Opsdeck] Webhook Pager switched off after 3 failures"
    assert "to 127.0.0.1" in text_body(message)
    assert "Answered 500" in text_body(message)
    assert f"/admin/notifications/webhookendpoint/{endpoint.pk}/change/" in html_body(message)
    # Switched off: new events no longer go to it.
    with transaction.atomic():
        notify("backup.failed", data={"backup_id": 9}, summary="Backup #9 failed")
    assert WebhookDelivery.objects.count() == 1
    assert len(webhook_receiver.requests) == 3


def test_event_committed_in_a_transaction_is_delivered_by_a_worker(webhook_receiver, admin_user, celery_worker):
    _, secret = _endpoint(webhook_receiver, admin_user, events=["backup.failed", "backup.stale"])

    with transaction.atomic():
        notify("backup.stale", data={"window_hours": 26}, summary="No verified backup for 26 hours")
        assert webhook_receiver.requests == []  # nothing leaves before the commit

    (request,) = webhook_receiver.wait_for(1)
    assert request.headers["Opsdeck-Event"] == "backup.stale"
    assert readme_verification_snippet()["opsdeck_signature_valid"](
        secret, request.body, request.headers["Opsdeck-Signature"]
    )
    _wait_until(lambda: WebhookDelivery.objects.get().status == WebhookDeliveryStatus.SUCCEEDED)


def test_endpoint_without_an_owner_is_reported_to_the_administrators(smtp_server, admin_user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    admin_user.email = "alice@example.com"
    admin_user.save()
    endpoint, _ = webhook_endpoint_create(name="Orphan", url="https://8.8.8.8/", events=["backup.failed"], owner=None)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=False, consecutive_failures=20, disabled_reason="Switched off after 20 failed attempts in a row"
    )

    assert webhook_disabled_email_send(endpoint_id=endpoint.pk) == "Told alice@example.com."

    (message,) = smtp_server.wait_for(1, to="alice@example.com")
    assert message["Subject"] == "[Opsdeck] Webhook Orphan switched off after 20 failures"
