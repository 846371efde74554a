"""Administrators route events to email addresses in the admin (validated, audited), read the events and email
deliveries, and send failed emails again; no other role sees any of it."""

import pytest
from django.contrib.auth.models import Permission

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.notifications.choices import DeliveryReason, EmailDeliveryStatus
from apps.notifications.models import EmailDelivery, EmailRoute, Event

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

ROUTES = "/admin/notifications/emailroute/"
EVENTS = "/admin/notifications/event/"
DELIVERIES = "/admin/notifications/emaildelivery/"


def route_form(**values) -> dict:
    return {"event": "backup.failed", "addresses": "", "active": "on", "note": "", **values}


def failed_delivery(address="ops@example.test") -> EmailDelivery:
    event = Event.objects.create(name="backup.failed", summary="Backup 2 failed", data={"backup_id": 2})
    return EmailDelivery.objects.create(
        event=event,
        address=address,
        reason=DeliveryReason.ROUTE,
        status=EmailDeliveryStatus.FAILED,
        attempts=6,
        last_error="ConnectionRefusedError: [Errno 111] Connection refused",
    )


def test_administrator_adds_a_route_from_addresses_one_per_line_and_it_is_audited(admin_client):
    response = admin_client.post(
        f"{ROUTES}add/", route_form(addresses="Ops@Example.test\noncall@example.test, ops@example.test", note="On call")
    )

    assert response.status_code == 302
    route = EmailRoute.objects.get()
    assert route.addresses == ["ops@example.test", "oncall@example.test"]
    assert route.active
    created = AuditEvent.objects.get(action="notifications.email_route.created")
    assert "oncall@example.test" in created.changes_text


def test_change_of_a_route_is_audited_with_before_and_after(admin_client):
    route = EmailRoute.objects.create(event="backup.failed", addresses=["ops@example.test"])

    form = admin_client.get(f"{ROUTES}{route.pk}/change/")
    assert "ops@example.test" in form.content.decode()
    admin_client.post(f"{ROUTES}{route.pk}/change/", route_form(addresses="ops@example.test\ncto@example.test"))

    route.refresh_from_db()
    assert route.addresses == ["ops@example.test", "cto@example.test"]
    changed = AuditEvent.objects.get(action="notifications.email_route.changed")
    assert "cto@example.test" in changed.changes_text


def test_route_with_a_bad_address_is_refused_naming_it(admin_client):
    response = admin_client.post(f"{ROUTES}add/", route_form(addresses="ops@example.test\nnot-an-address"))

    assert response.status_code == 200
    assert "&#x27;not-an-address&#x27; is not an email address." in response.content.decode()
    assert not EmailRoute.objects.exists()


def test_route_with_too_many_addresses_is_refused_naming_the_limit(admin_client):
    addresses = "\n".join(f"person{number}@example.test" for number in range(21))

    response = admin_client.post(f"{ROUTES}add/", route_form(addresses=addresses))

    assert "A route names at most 20 addresses; this one names 21." in response.content.decode()
    assert not EmailRoute.objects.exists()


@pytest.mark.parametrize("url", [ROUTES, EVENTS, DELIVERIES])
def test_staff_of_other_roles_cannot_open_notifications_in_the_admin_even_with_a_model_permission(
    client, roles, otp_login, url
):
    officer = UserFactory(username="cora-compliance", is_staff=True, roles=[Role.COMPLIANCE])
    officer.user_permissions.add(*Permission.objects.filter(content_type__app_label="notifications"))
    otp_login(client, officer)

    assert client.get(url).status_code == 403
    assert client.post(f"{ROUTES}add/", route_form(addresses="me@example.test")).status_code == 403
    assert not EmailRoute.objects.exists()


def test_delivery_list_filters_by_status_and_event_and_shows_the_error(admin_client):
    failed = failed_delivery()
    other = Event.objects.create(name="backup.stale", data={})
    EmailDelivery.objects.create(event=other, address="a@example.test", reason=DeliveryReason.ROUTE)

    response = admin_client.get(DELIVERIES, {"status__exact": "failed", "event_name": "backup.failed"})

    assert [delivery.pk for delivery in response.context["cl"].result_list] == [failed.pk]
    assert "Connection refused" in response.content.decode()


def test_deliveries_and_events_are_read_only_in_the_admin(admin_client):
    delivery = failed_delivery()

    assert admin_client.get(f"{DELIVERIES}add/").status_code == 403
    page = admin_client.get(f"{DELIVERIES}{delivery.pk}/change/").content.decode()
    assert 'name="address"' not in page
    event_page = admin_client.get(f"{EVENTS}{delivery.event_id}/change/").content.decode()
    assert "Backup 2 failed" in event_page
    assert 'name="summary"' not in event_page


def test_send_again_queues_failed_deliveries_with_fresh_tries_and_audits_it(admin_client):
    failed = failed_delivery()
    sent = failed_delivery("sent@example.test")
    EmailDelivery.objects.filter(pk=sent.pk).update(status=EmailDeliveryStatus.SENT)

    response = admin_client.post(
        DELIVERIES, {"action": "send_again", "_selected_action": [failed.pk, sent.pk]}, follow=True
    )

    failed.refresh_from_db()
    assert failed.status == EmailDeliveryStatus.PENDING
    assert failed.attempts == 0
    assert "1 email queued to be sent again." in response.content.decode()
    assert "1 selected email not failed: left as they were." in response.content.decode()
    assert AuditEvent.objects.filter(action="notifications.email_delivery.resent").count() == 1


def test_an_event_links_to_its_email_deliveries(admin_client):
    delivery = failed_delivery()
    failed_delivery("other@example.test")  # of another event

    events = admin_client.get(EVENTS).content.decode()
    link = f"{DELIVERIES}?event={delivery.event_id}"
    assert f'href="{link}"' in events

    response = admin_client.get(link)
    assert [listed.pk for listed in response.context["cl"].result_list] == [delivery.pk]
