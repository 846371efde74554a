"""Webhooks go to https URLs on public addresses only, checked when an endpoint is saved and again on the address
each attempt's connection reached, unless WEBHOOK_ALLOW_PRIVATE / WEBHOOK_ALLOW_HTTP say otherwise."""

import pytest

from apps.core.events import notify
from apps.notifications.addresses import WebhookUrlRefused
from apps.notifications.choices import WebhookDeliveryStatus
from apps.notifications.models import WebhookDelivery, WebhookEndpoint
from apps.notifications.webhooks import WebhookError, _post, webhook_delivery_attempt, webhook_endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOW_HTTP = False
    return settings


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("https://192.168.1.20:8443/hook", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("https://[fd00::1]/hook", "a private address"),
        ("https://[2002:7f00:1::]/hook", "a loopback address"),
        ("https://[64:ff9b::a00:1]/hook", "a private address"),
        ("https://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
        ("https://224.0.0.1/hook", "a multicast address"),
        ("https://localhost/hook", "localhost resolves to"),
        ("https://2130706433/hook", "resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_non_public_address_is_refused_with_the_setting_that_would_allow_it(strict, admin_user, url, why):
    with pytest.raises(WebhookError, match="WEBHOOK_ALLOW_PRIVATE") as refused:
        webhook_endpoint_create(name="Inside", url=url, events=["backup.failed"], owner=admin_user)
    assert why in str(refused.value)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://203.0.113.9/hook", "plain http is allowed only when WEBHOOK_ALLOW_HTTP is set"),
        ("ftp://203.0.113.9/hook", "must start with https://"),
        ("https:///hook", "no host name"),
        ("https://203.0.113.9:99999/hook", "port must be a number"),
        ("https://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_other_schemes_and_unusable_urls_are_refused(strict, admin_user, url, message):
    with pytest.raises(WebhookError, match=message):
        webhook_endpoint_create(name="Odd", url=url, events=["backup.failed"], owner=admin_user)


def test_public_https_address_is_accepted(strict, admin_user):
    endpoint, secret = webhook_endpoint_create(
        name="Public", url="https://8.8.8.8/hook", events=["backup.failed"], owner=admin_user
    )
    assert endpoint.url == "https://8.8.8.8/hook"
    assert secret.startswith("whsec_")


def test_unknown_or_no_events_are_refused(strict, admin_user):
    with pytest.raises(WebhookError, match=r"Unknown event\(s\) backup\.exploded; the events are job\.completed"):
        webhook_endpoint_create(name="x", url="https://8.8.8.8/", events=["backup.exploded"], owner=admin_user)
    with pytest.raises(WebhookError, match="Choose at least one event"):
        webhook_endpoint_create(name="x", url="https://8.8.8.8/", events=[], owner=admin_user)


def test_attempt_to_an_endpoint_now_on_a_private_address_is_refused_before_sending(
    webhook_receiver, admin_user, settings
):
    webhook_endpoint_create(name="Was allowed", url=webhook_receiver.url, events=["backup.failed"], owner=admin_user)
    settings.WEBHOOK_ALLOW_PRIVATE = False
    notify("backup.failed", data={"backup_id": 1}, summary="Backup #1 failed")
    delivery = WebhookDelivery.objects.get()

    webhook_delivery_attempt(delivery_id=delivery.pk)

    assert webhook_receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.RETRYING
    assert "127.0.0.1 is a loopback address" in delivery.error
    assert WebhookEndpoint.objects.get().consecutive_failures == 1


def test_connection_that_reaches_a_private_address_is_closed_before_anything_is_sent(webhook_receiver, settings):
    """The guard on the connection itself (a name that resolved to a public address at the check may resolve to a
    private one when connecting): nothing reaches the receiver."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WebhookUrlRefused, match="a loopback address"):
        _post(webhook_receiver.url, b"{}", {"Content-Type": "application/json"})
    assert webhook_receiver.requests == []
