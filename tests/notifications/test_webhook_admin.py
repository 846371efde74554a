"""Administrators manage webhook endpoints in the admin: the signing secret is shown once (on creation and on
rotation) and stored encrypted, URLs are checked with a clear message, the delivery log redelivers; nobody
else sees any of it."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.core.events import notify
from apps.notifications.choices import WebhookDeliveryStatus
from apps.notifications.models import WebhookDelivery, WebhookEndpoint
from apps.notifications.webhook_secrets import secret_open
from apps.notifications.webhooks import webhook_delivery_attempt, webhook_endpoint_create

from ..factories import UserFactory
from ..mfa import otp_force_login
from .webhook_receiver import readme_verification_snippet

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:notifications_webhookendpoint_add")
DELIVERIES_URL = reverse("admin:notifications_webhookdelivery_changelist")


def _secret_on(response) -> str:
    html = response.content.decode()
    start = html.index('id="webhook-secret"')
    return html[html.index(">", start) + 1 : html.index("</code>", start)]


def test_created_endpoint_shows_its_secret_once_and_stores_it_encrypted(admin_client, admin_user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    form = admin_client.get(ADD_URL).content.decode()
    assert 'type="checkbox" name="events" value="backup.failed"' in form
    response = admin_client.post(
        ADD_URL,
        {"name": "Pager", "url": "https://8.8.8.8/hooks", "events": ["backup.failed", "audit.chain_invalid"],
         "active": "on"},
    )  # fmt: skip

    endpoint = WebhookEndpoint.objects.get()
    secret_page = reverse("admin:notifications_webhookendpoint_secret", args=[endpoint.pk])
    assert response.status_code == 302
    assert response.url == secret_page
    assert (endpoint.owner, endpoint.events) == (admin_user, ["backup.failed", "audit.chain_invalid"])
    secret = _secret_on(admin_client.get(secret_page))
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert secret not in endpoint.secret_encrypted
    assert secret_open(endpoint.secret_encrypted) == secret
    # Gone after one showing.
    again = admin_client.get(secret_page)
    assert again.status_code == 302
    assert secret not in admin_client.get(again.url).content.decode()
    audit = AuditEvent.objects.get(action="notifications.webhook_endpoint.created")
    assert audit.changes["after"]["secret_encrypted"] == "********"


def test_private_url_is_refused_in_the_form_with_the_reason(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = admin_client.post(
        ADD_URL, {"name": "Inside", "url": "https://10.0.0.1/hooks", "events": ["backup.failed"], "active": "on"}
    )

    assert response.status_code == 200
    assert "10.0.0.1 is a private address" in response.content.decode()
    assert "WEBHOOK_ALLOW_PRIVATE" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_rotating_the_secret_asks_first_then_shows_the_new_one_once_and_signs_with_it(
    admin_client, admin_user, webhook_receiver
):
    endpoint, old = webhook_endpoint_create(name="Pager", url=webhook_receiver.url, events=["backup.failed"],
                                            owner=admin_user)  # fmt: skip
    rotate = reverse("admin:notifications_webhookendpoint_rotate_secret", args=[endpoint.pk])
    assert 'id="webhook-rotate-confirm"' in admin_client.get(rotate).content.decode()
    endpoint.refresh_from_db()
    assert secret_open(endpoint.secret_encrypted) == old  # a GET changes nothing

    new = _secret_on(admin_client.get(admin_client.post(rotate).url))

    assert new != old
    notify("backup.failed", data={"backup_id": 3}, summary="Backup #3 failed")
    webhook_delivery_attempt(delivery_id=WebhookDelivery.objects.get().pk)
    (request,) = webhook_receiver.requests
    valid = readme_verification_snippet()["opsdeck_signature_valid"]
    assert valid(new, request.body, request.headers["Opsdeck-Signature"])
    assert not valid(old, request.body, request.headers["Opsdeck-Signature"])
    assert AuditEvent.objects.filter(action="notifications.webhook_endpoint.secret_rotated").count() == 1


def test_delivery_log_shows_status_code_and_redeliver_action_sends_again(admin_client, admin_user, webhook_receiver):
    webhook_endpoint_create(name="Pager", url=webhook_receiver.url, events=["backup.failed"], owner=admin_user)
    webhook_receiver.answer(500)
    notify("backup.failed", data={"backup_id": 3}, summary="Backup #3 failed")
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)

    page = admin_client.get(DELIVERIES_URL, {"status__exact": "retrying"}).content.decode()
    assert "backup.failed" in page
    assert "500" in page
    assert "Retrying" in page

    response = admin_client.post(DELIVERIES_URL, {"action": "redeliver", "_selected_action": [str(delivery.pk)]})

    assert response.status_code == 302
    again = WebhookDelivery.objects.get(redelivery_of=delivery)
    assert again.status == WebhookDeliveryStatus.PENDING
    webhook_delivery_attempt(delivery_id=again.pk)
    assert [request.headers["Opsdeck-Delivery"] for request in webhook_receiver.requests] == [
        str(delivery.pk),
        str(again.pk),
    ]
    detail = admin_client.get(reverse("admin:notifications_webhookdelivery_change", args=[delivery.pk]))
    assert "Answered 500" in detail.content.decode()


def test_staff_without_the_administrator_role_cannot_see_webhooks(client, roles, admin_user):
    webhook_endpoint_create(name="Pager", url="https://8.8.8.8/", events=["backup.failed"], owner=admin_user)
    officer = UserFactory(username="staff-compliance", is_staff=True, roles=[Role.COMPLIANCE])
    otp_force_login(client, officer)

    assert client.get(reverse("admin:notifications_webhookendpoint_changelist")).status_code == 403
    assert client.get(DELIVERIES_URL).status_code == 403
    assert client.get(ADD_URL).status_code == 403


def test_switching_a_disabled_endpoint_back_on_starts_its_failure_count_afresh(admin_client, admin_user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    endpoint, _ = webhook_endpoint_create(name="Pager", url="https://8.8.8.8/", events=["backup.failed"],
                                          owner=admin_user)  # fmt: skip
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=False, consecutive_failures=20, disabled_reason="Switched off after 20 failed attempts in a row"
    )
    change = reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])

    response = admin_client.post(
        change, {"name": "Pager", "url": "https://8.8.8.8/", "events": ["backup.failed"], "active": "on"}
    )

    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures, endpoint.disabled_reason) == (True, 0, "")
    assert AuditEvent.objects.filter(action="notifications.webhook_endpoint.changed").exists()


def test_endpoint_page_links_to_its_deliveries_and_to_rotating_its_secret(admin_client, admin_user):
    endpoint, _ = webhook_endpoint_create(name="Pager", url="https://8.8.8.8/", events=["backup.failed"],
                                          owner=admin_user)  # fmt: skip

    page = admin_client.get(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])).content.decode()

    assert f'href="{DELIVERIES_URL}?endpoint__id__exact={endpoint.pk}"' in page
    assert f'href="{reverse("admin:notifications_webhookendpoint_rotate_secret", args=[endpoint.pk])}"' in page
