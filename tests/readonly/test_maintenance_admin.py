"""Maintenance mode in the admin: staff administrators switch it and plan windows inside the sudo window only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.readonly.models import MaintenanceMode, MaintenanceWindow
from apps.readonly.services import maintenance_mode_enable, maintenance_mode_status
from tests.factories import UserFactory
from tests.mfa import otp_force_login, sudo_force_login

pytestmark = pytest.mark.django_db

SWITCH = "/admin/readonly/maintenancemode/"
WINDOWS = "/admin/readonly/maintenancewindow/"


def _switch_url(client) -> str:
    response = client.get(SWITCH)
    assert response.status_code == 302
    return response["Location"]


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def test_outside_the_sudo_window_saving_changes_nothing_and_asks_to_reauthenticate(client, roles, admin_user):
    otp_force_login(client, admin_user)
    url = _switch_url(client)
    assert client.get(url).status_code == 200  # looking needs no sudo

    response = client.post(url, {"enabled": "on", "message": "Upgrade."})

    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate/?next=")
    assert maintenance_mode_status().active is False
    assert not AuditEvent.objects.filter(action__startswith="maintenance.").exists()


def test_in_the_sudo_window_an_administrator_turns_it_on_and_off_audited(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    url = _switch_url(client)
    until = timezone.now() + timedelta(hours=1)

    response = client.post(url, {"enabled": "on", "message": "Upgrade.", "until_0": _local(until).split()[0],
                                 "until_1": _local(until).split()[1]})  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    status = maintenance_mode_status()
    assert (status.active, status.message, status.changed_by) == (True, "Upgrade.", admin_user.username)
    assert abs((status.until - until).total_seconds()) < 1
    # The page reads again (maintenance refuses other writes, never this one), with the banner.
    page = client.get(url).content.decode()
    assert 'id="maintenance-banner"' in page
    assert client.post(url, {"message": ""}).status_code == 302
    assert maintenance_mode_status().active is False
    events = AuditEvent.objects.filter(action__startswith="maintenance.").order_by("id")
    assert [(event.action, event.actor_id, event.changes["via"]) for event in events] == [
        ("maintenance.enabled", admin_user.pk, "admin"),
        ("maintenance.disabled", admin_user.pk, "admin"),
    ]


def test_an_end_in_the_past_is_a_form_error(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    url = _switch_url(client)
    response = client.post(url, {"enabled": "on", "until_0": "2001-01-01", "until_1": "00:00:00"})
    assert response.status_code == 200
    assert "has already passed" in response.content.decode()
    assert maintenance_mode_status().active is False


def test_staff_who_are_not_administrators_cannot_open_it(client, roles):
    officer = UserFactory(username="staff-officer", is_staff=True, roles=[Role.COMPLIANCE])
    sudo_force_login(client, officer)
    assert client.get(SWITCH).status_code == 403
    assert client.get(f"{WINDOWS}add/").status_code == 403
    assert not MaintenanceMode.objects.exists()


def test_windows_are_planned_and_cancelled_in_the_sudo_window(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    starts = timezone.now() + timedelta(hours=2)
    ends = starts + timedelta(hours=1)
    form = {
        "starts_at_0": _local(starts).split()[0],
        "starts_at_1": _local(starts).split()[1],
        "ends_at_0": _local(ends).split()[0],
        "ends_at_1": _local(ends).split()[1],
        "message": "Network work.",
    }
    assert client.post(f"{WINDOWS}add/", form).status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.message, window.created_by) == ("Network work.", admin_user)
    assert "Network work." in client.get("/account/").content.decode()  # announced on the banner

    response = client.post(WINDOWS, {"action": "cancel_windows", "_selected_action": [window.pk]})
    assert response.status_code == 302
    window.refresh_from_db()
    assert window.cancelled_by == admin_user
    assert [event.action for event in AuditEvent.objects.filter(action__startswith="maintenance.").order_by("id")] == [
        "maintenance.window_scheduled",
        "maintenance.window_cancelled",
    ]


def test_a_window_ending_before_it_starts_is_a_form_error(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    starts = timezone.now() + timedelta(hours=2)
    form = {
        "starts_at_0": _local(starts).split()[0],
        "starts_at_1": _local(starts).split()[1],
        "ends_at_0": _local(starts - timedelta(hours=1)).split()[0],
        "ends_at_1": _local(starts - timedelta(hours=1)).split()[1],
    }
    response = client.post(f"{WINDOWS}add/", form)
    assert response.status_code == 200
    assert "must come after the start" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_cancelling_outside_the_sudo_window_is_refused(client, roles, admin_user):
    otp_force_login(client, admin_user)
    now = timezone.now()
    window = MaintenanceWindow.objects.create(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    response = client.post(WINDOWS, {"action": "cancel_windows", "_selected_action": [window.pk]})
    assert response["Location"].startswith("/account/reauthenticate/")
    window.refresh_from_db()
    assert window.cancelled_at is None


def test_while_on_the_rest_of_the_admin_refuses_writes_with_the_page(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    maintenance_mode_enable(message="Upgrade.")
    response = client.post("/admin/accounts/user/add/", {"username": "new"})
    assert response.status_code == 503
    assert "Upgrade." in response.content.decode()
