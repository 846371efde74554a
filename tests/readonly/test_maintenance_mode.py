"""Maintenance (read-only) mode through its services, the middleware, the API and the health check."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.core.errors import NotPermitted
from apps.readonly.models import MaintenanceMode
from apps.readonly.services import (
    DEFAULT_RETRY_AFTER_SECONDS,
    MaintenanceError,
    maintenance_mode_disable,
    maintenance_mode_enable,
    maintenance_mode_status,
    maintenance_window_cancel,
    maintenance_window_schedule,
)
from tests.helpers import api_error_detail
from tests.mfa import otp_force_login, sudo_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/quantum/jobs/"
STATUS = "/api/v1/core/maintenance/"
WINDOWS = "/api/v1/core/maintenance/windows/"


def _bearer(client, user, scopes=("read", "write")):
    token = token_create(owner=user, name="script", scopes=list(scopes), expires_in_days=1).secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _on(minutes: int | None = 30, message: str = "Database upgrade to PostgreSQL 16."):
    until = timezone.now() + timedelta(minutes=minutes) if minutes else None
    return maintenance_mode_enable(message=message, until=until, via="test")


# --- Services


def test_a_message_without_a_full_stop_reads_as_its_own_sentence_before_the_end_time():
    status = maintenance_mode_enable(
        message="Database upgrade in progress", until=timezone.now() + timedelta(hours=1), via="test"
    )

    assert status.message == "Database upgrade in progress."
    assert "in progress. It is planned to end at" in status.refusal_text()


def test_turning_it_on_and_off_is_audited_and_seen_in_the_status(admin_user):
    until = timezone.now() + timedelta(hours=1)
    status = maintenance_mode_enable(actor=admin_user, message="Moving hosts.", until=until, via="test")

    assert (status.active, status.source, status.message, status.until) == (True, "switch", "Moving hosts.", until)
    assert status.changed_by == admin_user.username
    assert 3590 <= status.retry_after_seconds() <= 3600
    assert maintenance_mode_disable(actor=admin_user, via="test").active is False
    events = list(AuditEvent.objects.filter(action__startswith="maintenance.").order_by("id"))
    assert [(event.action, event.actor_id) for event in events] == [
        ("maintenance.enabled", admin_user.pk),
        ("maintenance.disabled", admin_user.pk),
    ]
    assert events[0].changes["after"]["message"] == "Moving hosts."


def test_it_ends_by_itself_when_until_passes():
    _on()
    later = timezone.now() + timedelta(minutes=31)
    assert maintenance_mode_status(now=later).active is False
    assert MaintenanceMode.objects.get().enabled  # the row says on; the time says over


def test_without_an_end_retry_after_is_the_default():
    assert _on(minutes=None).retry_after_seconds() == DEFAULT_RETRY_AFTER_SECONDS


@pytest.mark.parametrize("user_fixture", ["operator_user", "viewer_user", "compliance_user"])
def test_only_staff_administrators_may_switch_it(request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    with pytest.raises(NotPermitted):
        maintenance_mode_enable(actor=user, message="no")
    assert maintenance_mode_status().active is False


def test_an_end_in_the_past_or_a_long_message_is_refused():
    with pytest.raises(MaintenanceError, match="has already passed"):
        maintenance_mode_enable(until=timezone.now() - timedelta(minutes=1))
    with pytest.raises(MaintenanceError, match="at most 500 are allowed"):
        maintenance_mode_enable(message="x" * 501)
    assert not MaintenanceMode.objects.filter(enabled=True).exists()


def test_a_window_is_announced_a_day_ahead_then_on_by_itself_then_over(admin_user):
    now = timezone.now()
    window = maintenance_window_schedule(
        actor=admin_user, starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=3), message="Disk swap."
    )
    far = maintenance_window_schedule(starts_at=now + timedelta(days=3), ends_at=now + timedelta(days=3, hours=1))

    announced = maintenance_mode_status()
    assert announced.active is False
    assert [planned.id for planned in announced.upcoming] == [window.pk]  # the one in 3 days is not yet announced
    running = maintenance_mode_status(now=now + timedelta(hours=2, minutes=1))
    assert (running.active, running.source, running.message, running.until) == (
        True,
        "window",
        "Disk swap.",
        window.ends_at,
    )
    assert maintenance_mode_status(now=now + timedelta(hours=3, minutes=1)).active is False

    maintenance_window_cancel(actor=admin_user, window_id=far.pk)
    with pytest.raises(MaintenanceError, match="already cancelled"):
        maintenance_window_cancel(window_id=far.pk)
    assert [event.action for event in AuditEvent.objects.filter(action__startswith="maintenance.").order_by("id")] == [
        "maintenance.window_scheduled",
        "maintenance.window_scheduled",
        "maintenance.window_cancelled",
    ]


def test_a_window_that_ends_before_it_starts_is_refused():
    now = timezone.now()
    with pytest.raises(MaintenanceError, match="must come after the start"):
        maintenance_window_schedule(starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=1))
    with pytest.raises(MaintenanceError, match="at most 7 days"):
        maintenance_window_schedule(starts_at=now, ends_at=now + timedelta(days=8))


# --- The middleware: writes refused, reads and signing in go on


def test_api_writes_get_503_with_retry_after_and_the_message_in_the_api_shape(api_client, operator_user):
    _bearer(api_client, operator_user)
    _on(minutes=10)

    response = api_client.post(JOBS, {"source": ghz_qasm2(2), "shots": 10}, format="json")

    assert response.status_code == 503
    assert 590 <= int(response["Retry-After"]) <= 600
    body = response.json()
    assert body["code"] == "maintenance"
    assert "Database upgrade to PostgreSQL 16." in body["detail"]
    assert body["retry_after_seconds"] == int(response["Retry-After"])
    assert body["maintenance"]["active"] is True
    for method in ("put", "patch", "delete"):
        assert getattr(api_client, method)(f"{JOBS}1/", {}, format="json").status_code == 503
    # Reads go on.
    assert api_client.get(JOBS).status_code == 200
    assert api_client.get(STATUS).json()["active"] is True


def test_a_refused_write_leaves_nothing_in_the_audit_trail(api_client, operator_user):
    _bearer(api_client, operator_user)
    _on()
    before = AuditEvent.objects.count()
    assert api_client.post(JOBS, {"source": ghz_qasm2(2), "shots": 10}, format="json").status_code == 503
    assert AuditEvent.objects.count() == before


def test_page_writes_get_a_503_page_with_the_message(client, operator_user):
    otp_force_login(client, operator_user)
    _on()

    response = client.post("/account/tokens/new/", {"name": "x"})

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Maintenance in progress" in page
    assert "Database upgrade to PostgreSQL 16." in page
    assert 'id="maintenance-banner"' in page
    assert client.get("/account/").status_code == 200


def test_signing_in_and_out_go_on(client, operator_user, password):
    _on()
    response = client.post("/accounts/login/", {"username": operator_user.username, "password": password})
    assert response.status_code == 302
    assert client.post("/accounts/logout/").status_code in (200, 302)


def test_health_and_metrics_go_on_and_readiness_reports_maintenance_without_failing(client):
    _on(minutes=None, message="Rack move.")
    ready = client.get("/health/ready")
    check = ready.json()["checks"]["maintenance"]
    assert (check["ok"], check["required"]) == (True, False)
    assert check["detail"] == "on (switch) until turned off: Rack move."
    assert ready.json()["status"] in ("ok", "degraded")  # never "down" because of maintenance
    assert client.get("/health/live").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_readiness_says_off_and_mentions_a_window_within_a_day(client):
    assert client.get("/health/ready").json()["checks"]["maintenance"]["detail"] == "off"
    now = timezone.now()
    maintenance_window_schedule(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    assert client.get("/health/ready").json()["checks"]["maintenance"]["detail"].startswith("off; a window is planned")


def test_writes_go_through_when_it_is_off(api_client, operator_user):
    _bearer(api_client, operator_user)
    _on()
    maintenance_mode_disable()
    response = api_client.post(JOBS, {"source": ghz_qasm2(2), "shots": 10}, format="json")
    assert response.status_code == 201, response.content


# --- The API


def test_anyone_signed_in_reads_the_status_and_nobody_else(api_client, viewer_user):
    assert api_client.get(STATUS).status_code == 401
    _bearer(api_client, viewer_user, scopes=("read",))
    body = api_client.get(STATUS).json()
    assert (body["active"], body["until"], body["upcoming"]) == (False, None, [])


def test_the_api_switch_needs_a_staff_administrator_in_the_sudo_window(api_client, operator_user, admin_user):
    _bearer(api_client, operator_user)
    api_error_detail(api_client.post(STATUS, {"enabled": True}, format="json"), 403, "permission_denied")
    totp_device_create(admin_user)  # administrators' tokens work once they have an authenticator
    _bearer(api_client, admin_user)
    detail = api_error_detail(
        api_client.post(STATUS, {"enabled": True}, format="json"), 403, "reauthentication_required"
    )
    assert "API tokens cannot switch maintenance mode" in detail
    api_client.credentials()
    otp_force_login(api_client, admin_user)
    api_error_detail(api_client.post(STATUS, {"enabled": True}, format="json"), 403, "reauthentication_required")
    assert maintenance_mode_status().active is False


def test_an_administrator_turns_it_on_and_off_through_the_api_while_it_refuses_other_writes(api_client, admin_user):
    sudo_force_login(api_client, admin_user)
    until = (timezone.now() + timedelta(hours=1)).isoformat()

    on = api_client.post(STATUS, {"enabled": True, "message": "Upgrade.", "until": until}, format="json")
    assert on.status_code == 200, on.content
    assert (on.json()["active"], on.json()["message"]) == (True, "Upgrade.")
    assert api_client.post(JOBS, {"source": ghz_qasm2(2), "shots": 10}, format="json").status_code == 503
    # Its own switch still works while it refuses every other write.
    off = api_client.post(STATUS, {"enabled": False}, format="json")
    assert (off.status_code, off.json()["active"]) == (200, False)


def test_the_api_refuses_bad_times_naming_them(api_client, admin_user):
    sudo_force_login(api_client, admin_user)
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert "has already passed" in api_error_detail(
        api_client.post(STATUS, {"enabled": True, "until": past}, format="json"), 400, "invalid"
    )
    now = timezone.now()
    body = {"starts_at": (now + timedelta(hours=2)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()}
    detail = api_error_detail(api_client.post(WINDOWS, body, format="json"), 400, "invalid")
    assert detail.startswith("ends_at: The end")
    assert "must come after the start" in detail
    assert "offsets run from" in api_error_detail(
        api_client.post(STATUS, {"enabled": True, "until": "2030-01-01T00:00+23:00"}, format="json"), 400, "invalid"
    )


def test_windows_are_planned_listed_and_cancelled_through_the_api(api_client, admin_user):
    sudo_force_login(api_client, admin_user)
    now = timezone.now()
    body = {
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        "message": "Kernel updates.",
    }
    created = api_client.post(WINDOWS, body, format="json")
    assert created.status_code == 201, created.content
    window_id = created.json()["id"]
    assert [window["id"] for window in api_client.get(WINDOWS).json()] == [window_id]
    assert api_client.get(STATUS).json()["upcoming"][0]["message"] == "Kernel updates."

    cancelled = api_client.post(f"{WINDOWS}{window_id}/cancel/")
    assert cancelled.status_code == 200
    assert api_client.get(WINDOWS).json() == []
    assert "already cancelled" in api_error_detail(api_client.post(f"{WINDOWS}{window_id}/cancel/"), 409, "conflict")
    api_error_detail(api_client.post(f"{WINDOWS}999999/cancel/"), 404, "not_found")
