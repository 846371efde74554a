"""Events reach by email exactly the people who may see them and want them, and the organisation's routes, through a
real SMTP server and a real Celery worker."""

import time

import pytest
from django.db import transaction

from apps.core.events import EVENT_TYPES, notify
from apps.notifications.choices import EmailDeliveryStatus
from apps.notifications.email import email_wants
from apps.notifications.models import EmailDelivery, EmailRoute, Event, NotificationPreference

from ..factories import UserFactory
from ..mail_server import html_body, text_body

pytestmark = pytest.mark.django_db(transaction=True)


def notify_committed(event: str, **kwargs) -> None:
    """As a producer calls it: inside its transaction, sent once it commits."""
    with transaction.atomic():
        notify(event, **kwargs)


def deliveries_done(timeout: float = 60) -> list[EmailDelivery]:
    """Every delivery once none is pending (so that an email that should not exist had its chance to)."""
    deadline = time.monotonic() + timeout
    while EmailDelivery.objects.filter(status=EmailDeliveryStatus.PENDING).exists():
        if time.monotonic() > deadline:
            pytest.fail(f"Deliveries still pending after {timeout} s.")
        time.sleep(0.05)
    return list(EmailDelivery.objects.all())


def recipients(smtp_server) -> set[str]:
    return {address for message in smtp_server.messages for address in message["X-Envelope-To"].split(", ")}


@pytest.fixture
def everyone(superuser, admin_user, operator_user, viewer_user, compliance_user, outsider_user):
    return {
        "root": superuser,
        "admin": admin_user,
        "operator": operator_user,
        "viewer": viewer_user,
        "compliance": compliance_user,
        "outsider": outsider_user,
    }


def test_admins_only_event_reaches_administrators_and_superusers_never_other_roles(
    everyone, smtp_server, celery_worker
):
    notify_committed("backup.failed", data={"backup_id": 7, "error": "disk full"}, summary="Backup 7 failed")

    smtp_server.wait_for(2)
    deliveries_done()
    assert recipients(smtp_server) == {"alice-admin@example.test", "root@example.test"}
    assert all(delivery.status == EmailDeliveryStatus.SENT for delivery in EmailDelivery.objects.all())


def test_a_user_who_turned_email_off_is_not_told_and_others_get_the_default(everyone, smtp_server, celery_worker):
    NotificationPreference.objects.create(user=everyone["admin"], event="audit.chain_invalid", email=False)

    notify_committed("audit.chain_invalid", data={"first_bad_event": 1042}, summary="Event 1042 was changed")

    smtp_server.wait_for(2)
    deliveries_done()
    assert recipients(smtp_server) == {"carl-compliance@example.test", "root@example.test"}


def test_own_event_reaches_only_the_user_it_is_about_and_only_if_they_opted_in(everyone, smtp_server, celery_worker):
    other_operator = UserFactory(username="otto-operator", roles=["operator"])
    for user in (everyone["operator"], other_operator, everyone["admin"]):
        NotificationPreference.objects.create(user=user, event="job.failed", email=True)

    notify_committed("job.failed", data={"job_id": 12, "kind": "quantum"}, user=everyone["operator"])
    notify_committed("job.failed", data={"job_id": 13, "kind": "quantum"}, user=everyone["viewer"])  # not opted in

    (message,) = smtp_server.wait_for(1)
    deliveries_done()
    assert recipients(smtp_server) == {"oscar-operator@example.test"}
    assert "Job ID: 12" in text_body(message)
    assert Event.objects.count() == 1  # the viewer's job end was stored for nobody


def test_frequent_event_nobody_wants_stores_no_event_and_sends_nothing(everyone, smtp_server):
    EmailRoute.objects.create(event="job.failed", addresses=["ops@example.test"], active=False)

    notify_committed("job.completed", data={"job_id": 1}, user=everyone["operator"])
    notify_committed("job.failed", data={"job_id": 1}, user=everyone["operator"])

    assert not Event.objects.exists()
    assert not EmailDelivery.objects.exists()


def test_organisation_route_addresses_get_the_event_once_each_with_their_own_footer(
    everyone, smtp_server, celery_worker, settings
):
    settings.PORTAL_URL = "https://opsdeck.example.com"
    EmailRoute.objects.create(
        event="backup.stale", addresses=["oncall@example.test", "alice-admin@example.test"], note="On call"
    )
    EmailRoute.objects.create(event="backup.stale", addresses=["oncall@example.test", "cto@example.test"])

    notify_committed("backup.stale", data={"window_hours": 26}, summary="No verified backup for 26 hours")

    smtp_server.wait_for(4)
    deliveries_done()
    assert sorted(message["X-Envelope-To"] for message in smtp_server.messages) == [
        "alice-admin@example.test",
        "cto@example.test",
        "oncall@example.test",
        "root@example.test",
    ]
    (route_message,) = smtp_server.to("oncall@example.test")
    assert 'an administrator routed "No recent verified backup" to this address' in text_body(route_message)
    (admin_message,) = smtp_server.to("alice-admin@example.test")
    assert "is on by default for your role" in text_body(admin_message)
    assert "https://opsdeck.example.com/account/notifications/" in text_body(admin_message)


def test_email_shows_the_label_summary_data_fields_portal_link_and_why_it_was_sent(
    admin_user, smtp_server, celery_worker, settings
):
    settings.PORTAL_URL = "https://opsdeck.example.com"
    NotificationPreference.objects.create(user=admin_user, event="backup.failed", email=True)

    notify_committed(
        "backup.failed",
        data={"backup_id": 7, "error": "pg_dump: connection refused", "path": "/admin/backups/backup/7/change/"},
        summary="Backup 7 failed",
    )

    (message,) = smtp_server.wait_for(1, to="alice-admin@example.test")
    assert message["Subject"] == "[Opsdeck] Backup failed: Backup 7 failed"
    text, html = text_body(message), html_body(message)
    assert "Backup ID: 7" in text
    assert "Error: pg_dump: connection refused" in text
    assert "Open it in Opsdeck: https://opsdeck.example.com/admin/backups/backup/7/change/" in text
    assert 'You get this because you turned on email for "Backup failed"' in text
    assert '<a href="https://opsdeck.example.com/admin/backups/backup/7/change/"' in html
    assert ">Backup ID</th>" in html
    assert "pg_dump: connection refused</td>" in html
    assert "https://opsdeck.example.com/account/notifications/" in html
    assert "Path" not in text  # the link, not a field


def test_event_data_is_escaped_in_the_html_email_and_left_as_written_in_subject_and_text(
    admin_user, smtp_server, celery_worker
):
    notify_committed("backup.failed", data={"error": "<script>alert(1)</script>"}, summary="<b>bold</b> & more")

    (message,) = smtp_server.wait_for(1)
    assert message["Subject"] == "[Opsdeck] Backup failed: <b>bold</b> & more"
    assert "Error: <script>alert(1)</script>" in text_body(message)
    assert "<script>" not in html_body(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_body(message)
    assert "<b>bold</b>" not in html_body(message)


def test_checking_whether_email_wants_a_job_end_costs_at_most_two_queries(operator_user, django_assert_max_num_queries):
    NotificationPreference.objects.create(user=operator_user, event="job.completed", email=True)
    job_completed = EVENT_TYPES["job.completed"]

    with django_assert_max_num_queries(1):
        assert email_wants(job_completed, operator_user)
    with django_assert_max_num_queries(2):
        assert not email_wants(EVENT_TYPES["job.failed"], operator_user)


def test_routed_addresses_are_not_told_it_was_their_own_job(operator_user, smtp_server, celery_worker):
    EmailRoute.objects.create(event="job.failed", addresses=["ops@example.test"])

    notify_committed("job.failed", data={"job_id": 5}, user=operator_user, summary="Quantum job 5 failed")

    (message,) = smtp_server.wait_for(1, to="ops@example.test")
    assert "One of your jobs failed." not in text_body(message)
    assert "Job failed: Quantum job 5 failed" in text_body(message)


def test_user_who_lost_the_role_before_sending_is_not_sent_to(admin_user, smtp_server):
    notify_committed("backup.failed", data={"backup_id": 1})
    admin_user.groups.clear()

    from apps.notifications.tasks import email_deliver

    (delivery,) = EmailDelivery.objects.all()
    email_deliver.apply(args=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == EmailDeliveryStatus.FAILED
    assert "no longer may be told" in delivery.last_error
    assert not smtp_server.messages


def test_task_for_a_delivery_that_is_gone_exits_cleanly(admin_user, smtp_server):
    from apps.notifications.tasks import email_deliver

    assert email_deliver.apply(args=[999_999]).get() == "gone"
