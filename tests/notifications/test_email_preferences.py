"""Each user chooses, on /account/notifications/ or over the API, which of the events their role may see reach them by
email; saving is audited and can never subscribe anyone to an event their role may not see."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.notifications.models import NotificationPreference

from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/account/notifications/"
API = "/api/v1/notifications/preferences/"
EVERY_ROLE_EVENTS = ["job.completed", "job.failed", "token.expiring"]
# Operators may also be told of their models' drift.
OPERATOR_EVENTS = [*EVERY_ROLE_EVENTS, "model.drift"]


def listed_events(response) -> list[str]:
    return [choice.name for choice in response.context["choices"]]


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.post(PAGE, {"email": ["job.failed"]}).status_code == 302
    assert not NotificationPreference.objects.exists()


def test_anonymous_api_clients_are_refused(api_client):
    assert api_client.get(API).status_code in (401, 403)


def test_viewer_sees_only_the_events_every_role_may_see(client, roles, viewer_user):
    client.force_login(viewer_user)

    response = client.get(PAGE)

    assert response.status_code == 200
    assert listed_events(response) == EVERY_ROLE_EVENTS
    assert b"Backup failed" not in response.content
    assert b"Audit trail broken" not in response.content


def test_compliance_officer_sees_audit_and_report_events_but_not_backups(client, roles, compliance_user, otp_login):
    otp_login(client, compliance_user)

    events = listed_events(client.get(PAGE))

    assert {"audit.chain_invalid", "audit.checkpoint_invalid", "report.ready"} <= set(events)
    assert "backup.failed" not in events
    assert "account.locked_out" not in events


def test_page_shows_the_defaults_until_the_user_chooses(client, roles, admin_user, otp_login):
    otp_login(client, admin_user)

    response = client.get(PAGE)

    assert 'value="backup.failed" id="email-backupfailed" checked' in response.content.decode()
    assert 'value="job.failed" id="email-jobfailed">' in response.content.decode()


def test_saving_stores_the_changes_audits_them_and_redirects_with_a_message(client, roles, admin_user, otp_login):
    otp_login(client, admin_user)
    # Every event on by default stays on except backup.stale (unchecked); job.failed (off by default) is turned on.
    checked = ["backup.failed", "audit.chain_invalid", "audit.checkpoint_invalid", "account.locked_out"]
    checked += ["account.new_ip_signin", "token.expiring", "model.drift", "report.ready", "job.failed"]

    response = client.post(PAGE, {"email": checked}, follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    assert "Saved: email for 2 events changed." in response.content.decode()
    stored = dict(NotificationPreference.objects.filter(user=admin_user).values_list("event", "email"))
    assert stored == {"backup.stale": False, "job.failed": True}
    audit = AuditEvent.objects.get(action="notifications.preferences.changed")
    assert audit.actor_username == admin_user.username
    assert "backup.stale" in audit.changes_text
    assert 'value="job.failed" id="email-jobfailed" checked' in response.content.decode()


def test_a_posted_event_the_role_may_not_see_is_ignored(client, roles, viewer_user):
    client.force_login(viewer_user)

    client.post(PAGE, {"email": ["backup.failed", "job.failed"]})

    stored = dict(NotificationPreference.objects.filter(user=viewer_user).values_list("event", "email"))
    assert stored == {"job.failed": True, "token.expiring": False}


def test_account_page_links_to_the_notification_preferences(client, roles, viewer_user):
    client.force_login(viewer_user)

    response = client.get(reverse("account"))

    assert f'href="{PAGE}"' in response.content.decode()


def test_user_without_an_email_address_is_told_none_reaches_them(client, roles):
    user = UserFactory(username="no-mail", email="", roles=["operator"])
    client.force_login(user)

    assert b"no email address" in client.get(PAGE).content


def test_api_lists_the_events_with_their_setting_and_default(api_client, roles, operator_user):
    api_client.force_authenticate(operator_user)

    body = api_client.get(API).json()

    assert [item["event"] for item in body["preferences"]] == OPERATOR_EVENTS
    job_failed = body["preferences"][1]
    assert job_failed == {
        "event": "job.failed",
        "label": "Job failed",
        "description": "One of your jobs failed.",
        "email": False,
        "default": False,
        "chosen": False,
    }


def test_api_put_changes_the_named_events_only(api_client, roles, operator_user):
    api_client.force_authenticate(operator_user)

    response = api_client.put(API, {"preferences": [{"event": "job.failed", "email": True}]}, format="json")

    assert response.status_code == 200
    by_event = {item["event"]: item for item in response.json()["preferences"]}
    assert by_event["job.failed"]["email"] is True
    assert by_event["job.failed"]["chosen"] is True
    assert by_event["token.expiring"]["chosen"] is False
    assert NotificationPreference.objects.filter(user=operator_user).count() == 1


def test_api_refuses_an_event_the_role_may_not_see_and_saves_nothing(api_client, roles, operator_user):
    api_client.force_authenticate(operator_user)
    body = {"preferences": [{"event": "job.failed", "email": True}, {"event": "backup.failed", "email": True}]}

    response = api_client.put(API, body, format="json")

    assert response.status_code == 403
    assert "backup.failed" in response.json()["detail"]
    assert not NotificationPreference.objects.exists()


def test_api_refuses_an_unknown_event_naming_it(api_client, roles, operator_user):
    api_client.force_authenticate(operator_user)

    response = api_client.put(API, {"preferences": [{"event": "backup.exploded", "email": True}]}, format="json")

    assert response.status_code == 400
    assert "backup.exploded" in response.json()["detail"]
