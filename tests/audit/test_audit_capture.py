"""Each security-relevant action, done for real, leaves exactly the audit event it should."""

import json

import pytest
from celery import shared_task
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django_celery_beat.models import PeriodicTask

from apps.audit.models import AuditEvent
from apps.core.request_context import current_request, current_request_id
from tests.mfa import sudo_force_login

pytestmark = pytest.mark.django_db


def _events(action: str):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _row_text(event: AuditEvent) -> str:
    return json.dumps({f.attname: str(getattr(event, f.attname)) for f in AuditEvent._meta.concrete_fields})


def test_login_is_recorded_with_address_agent_and_request_id(client, operator_user, password):
    response = client.post(
        "/accounts/login/",
        {"username": operator_user.username, "password": password},
        HTTP_USER_AGENT="pytest-browser/1.0",
        HTTP_X_REQUEST_ID="req-login-1",
    )
    assert response["X-Request-ID"] == "req-login-1"
    [event] = _events("auth.login.succeeded")
    assert (event.actor, event.actor_username, event.outcome) == (operator_user, "oscar-operator", "success")
    assert (event.ip, event.user_agent, event.request_id) == ("127.0.0.1", "pytest-browser/1.0", "req-login-1")


def test_failed_login_is_recorded_without_the_password(client, operator_user):
    client.post("/accounts/login/", {"username": operator_user.username, "password": "Wrong-Guess-42"})
    [event] = _events("auth.login.failed")
    assert event.outcome == "failure"
    assert event.actor is None
    assert event.changes == {"username": "oscar-operator"}
    assert "Wrong-Guess-42" not in _row_text(event)


def test_logout_is_recorded(client, viewer_user):
    client.force_login(viewer_user)
    client.post("/accounts/logout/")
    [event] = _events("auth.logout")
    assert event.actor == viewer_user


def test_invalid_request_id_is_replaced(client):
    response = client.get("/", HTTP_X_REQUEST_ID="bad id with spaces")
    assert response["X-Request-ID"] != "bad id with spaces"
    assert len(response["X-Request-ID"]) == 32


def test_admin_change_records_field_diff_and_masks_the_password(client, superuser, operator_user):
    sudo_force_login(client, superuser)  # setting a password needs a fresh second factor
    response = client.post(
        f"/admin/accounts/user/{operator_user.pk}/password/",
        {"password1": "A-new-Secret-Passphrase-9", "password2": "A-new-Secret-Passphrase-9", "usable_password": "true"},
    )
    assert response.status_code == 302
    event = _events("accounts.user.changed")[-1]
    assert event.actor == superuser
    assert event.object_type == "accounts.user"
    assert event.object_id == str(operator_user.pk)
    assert event.changes == {"password": {"before": "********", "after": "********"}}
    operator_user.refresh_from_db()
    assert operator_user.password not in _row_text(event)
    assert "A-new-Secret-Passphrase-9" not in _row_text(event)


def test_admin_role_change_records_the_added_role_and_staff_flag(client, superuser, viewer_user):
    from django.contrib.auth.models import Group

    compliance = Group.objects.get_or_create(name="compliance")[0]
    sudo_force_login(client, superuser)  # granting a role needs a fresh second factor
    data = {
        "username": viewer_user.username,
        "email": viewer_user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [str(group.pk) for group in viewer_user.groups.all()] + [str(compliance.pk)],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/accounts/user/{viewer_user.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    changes = [event.changes for event in _events("accounts.user.changed")]
    assert {"is_staff": {"before": False, "after": True}} in [
        {key: value for key, value in change.items() if key == "is_staff"} for change in changes
    ]
    assert {"groups": {"added": [str(compliance.pk)]}} in changes
    added = {"groups": {"added": [str(compliance.pk)]}}
    role_change = next(event for event in _events("accounts.user.changed") if event.changes == added)
    assert (role_change.actor, role_change.object_id) == (superuser, str(viewer_user.pk))


def test_unregistered_model_changed_from_an_admin_page_is_recorded():
    request = RequestFactory().post("/admin/contenttypes/contenttype/1/change/")
    token = current_request.set(request)
    try:
        content_type = ContentType.objects.create(app_label="tests", model="gadget")
        content_type.model = "widget"
        content_type.save()
    finally:
        current_request.reset(token)
    assert _events("admin.object.created")[0].object_type == "contenttypes.contenttype"
    [changed] = _events("admin.object.changed")
    assert changed.changes == {"model": {"before": "gadget", "after": "widget"}}


def test_model_changes_outside_admin_and_unregistered_are_not_recorded():
    ContentType.objects.create(app_label="tests", model="quiet")
    assert not AuditEvent.objects.exists()


def test_schedule_changes_in_the_admin_are_recorded_per_task(client, superuser, otp_login):
    from django.core.management import call_command

    call_command("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name="Clear expired sessions")
    otp_login(client, superuser)
    response = client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [str(task.pk)], "index": "0"},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.enabled is False
    [event] = [e for e in _events("schedule.changed") if e.object_id == str(task.pk)]
    assert event.changes == {"enabled": {"before": True, "after": False}}
    assert event.actor == superuser


def test_beat_bookkeeping_is_not_a_schedule_change():
    from django.core.management import call_command
    from django.utils import timezone

    call_command("setup_periodic_tasks")
    before = AuditEvent.objects.count()
    task = PeriodicTask.objects.get(name="Clear expired sessions")
    task.last_run_at = timezone.now()
    task.total_run_count += 1
    task.save()
    assert AuditEvent.objects.count() == before


def test_api_write_is_recorded_with_method_path_and_status(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    response = api_client.post("/api/v1/core/maintenance-runs/", {"task_name": "x"}, format="json")
    assert response.status_code == 405
    [event] = _events("api.write")
    assert event.outcome == "failure"
    assert event.object_type == "core.maintenancerun"
    assert event.changes == {"method": "POST", "path": "/api/v1/core/maintenance-runs/", "status": 405}
    assert event.request_id == response["X-Request-ID"]


def test_api_denial_is_recorded(api_client, outsider_user):
    api_client.force_authenticate(outsider_user)
    assert api_client.get("/api/v1/core/maintenance-runs/").status_code == 403
    [event] = _events("access.denied")
    assert (event.actor, event.outcome) == (outsider_user, "denied")
    assert event.changes["path"] == "/api/v1/core/maintenance-runs/"


def test_admin_denial_is_recorded(client, admin_user, otp_login):
    otp_login(client, admin_user)  # staff, but without permission on users
    assert client.get("/admin/accounts/user/").status_code == 403
    [event] = _events("access.denied")
    assert event.actor == admin_user
    assert event.changes == {"method": "GET", "path": "/admin/accounts/user/", "status": 403}


@shared_task(name="tests.request_id_echo")
def request_id_echo() -> str:
    return current_request_id.get()


def test_request_id_travels_into_celery_tasks(celery_worker):
    token = current_request_id.set("req-into-task")
    try:
        result = request_id_echo.delay()
    finally:
        current_request_id.reset(token)
    assert result.get(timeout=30) == "req-into-task"


def test_secret_looking_values_are_masked_wherever_they_are():
    from apps.audit.services import event_record

    event = event_record(
        action="test.masking",
        changes={"api_token": "tok-123", "nested": {"client_secret": "s3", "name": "kept"}, "otp_codes": ["1", "2"]},
    )
    event.refresh_from_db()
    assert event.changes == {
        "api_token": "********",
        "nested": {"client_secret": "********", "name": "kept"},
        "otp_codes": ["********", "********"],
    }
    assert "tok-123" not in _row_text(event)
